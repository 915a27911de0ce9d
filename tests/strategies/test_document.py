"""Strategy documents: parsing and validation (pure). Every error names the step and the field."""

from __future__ import annotations

import copy
from importlib.resources import files
from typing import Any

import pytest
import yaml

from relance.strategies.document import Delay, Step, StrategyDoc, StrategyDocumentError, parse_strategy

DEFAULT_YAML = files("relance.strategies").joinpath("default.yaml").read_text(encoding="utf-8")


def doc(**changes: Any) -> dict[str, Any]:
    """A valid document as a mapping, with top-level ``changes``."""
    base: dict[str, Any] = {
        "key": "test",
        "version": 2,
        "name": "Test",
        "steps": [
            {"id": "first", "after_days": 0, "action": "email", "template": "first_notice"},
            {"id": "sms", "after_days": 3, "action": "sms", "template": "sms_reminder"},
            {"id": "end", "after_days": 20, "action": "close"},
        ],
    }
    return {**copy.deepcopy(base), **changes}


def with_step(index: int, **fields: Any) -> dict[str, Any]:
    """The valid document with step ``index`` (0-based) changed; a ``None`` value removes the field."""
    data = doc()
    step = data["steps"][index]
    for name, value in fields.items():
        if value is None:
            step.pop(name, None)
        else:
            step[name] = value
    return data


def error_of(source: str | dict[str, Any]) -> StrategyDocumentError:
    with pytest.raises(StrategyDocumentError) as info:
        parse_strategy(source)
    return info.value


def test_default_strategy_parses() -> None:
    strategy = parse_strategy(DEFAULT_YAML)
    assert (strategy.key, strategy.version) == ("default", 1)
    assert [(s.id, s.after_days, s.action, s.template) for s in strategy.steps] == [
        ("first_notice", 0, "email", "first_notice"),
        ("reminder", 7, "email", "reminder"),
        ("final_notice", 15, "email", "final_notice"),
        ("return", 30, "return_to_creditor", ""),
    ]
    assert [s.is_contact for s in strategy.steps] == [True, True, True, False]


def test_yaml_text_and_mapping_give_the_same_document() -> None:
    assert parse_strategy(DEFAULT_YAML) == parse_strategy(yaml.safe_load(DEFAULT_YAML))
    assert parse_strategy(yaml.safe_dump(doc())) == parse_strategy(doc())


def test_step_key_names_strategy_version_and_step() -> None:
    strategy = parse_strategy(doc())
    assert strategy.step_key(strategy.steps[1]) == "test:v2:sms"
    assert isinstance(strategy, StrategyDoc)
    assert strategy.steps[2] == Step(id="end", delay=Delay("placement", 20), action="close", template="")


def test_steps_on_the_same_day_are_allowed() -> None:
    data = with_step(1, after_days=0)
    assert [s.after_days for s in parse_strategy(data).steps] == [0, 0, 20]


@pytest.mark.parametrize("action", ["email", "sms", "letter", "call"])
def test_missing_template_on_a_contact_step_names_the_step(action: str) -> None:
    error = error_of(with_step(1, action=action, template=None))
    assert error.where == "steps[2].template"
    assert action in error.problem
    assert str(error).startswith("steps[2].template: ")


def test_empty_template_is_a_missing_template() -> None:
    assert error_of(with_step(0, template="")).where == "steps[1].template"


def test_unknown_action_names_the_step_and_value() -> None:
    error = error_of(with_step(2, action="sue"))
    assert error.where == "steps[3].action"
    assert "'sue'" in error.problem
    assert "email" in error.problem  # says what is allowed


def test_missing_action_is_an_unknown_action() -> None:
    assert error_of(with_step(0, action=None)).where == "steps[1].action"


def test_duplicate_id_names_the_second_step() -> None:
    error = error_of(with_step(2, id="first"))
    assert error.where == "steps[3].id"
    assert "duplicate" in error.problem
    assert "'first'" in error.problem


@pytest.mark.parametrize("bad_id", [None, "", 7])
def test_step_id_is_required(bad_id: object) -> None:
    # None removes the field.
    assert error_of(with_step(1, id=bad_id)).where == "steps[2].id"


def test_non_chronological_steps_name_the_later_step() -> None:
    error = error_of(with_step(2, after_days=2))
    assert error.where == "steps[3].after_days"
    assert "chronological" in error.problem


@pytest.mark.parametrize("after", ["7", 1.5, True, None])
def test_after_days_must_be_an_integer(after: object) -> None:
    error = error_of(with_step(1, after_days=after))
    assert error.where == "steps[2].after_days"
    assert "integer" in error.problem


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, None])
def test_bad_version_is_refused(version: object) -> None:
    data = doc(version=version)
    error = error_of(data)
    assert error.where == "version"
    assert "positive integer" in error.problem


def test_boolean_version_is_refused() -> None:
    # ``version: true`` in YAML is a boolean, not version 1; after_days already refuses booleans.
    assert error_of(doc(version=True)).where == "version"


def test_negative_delay_is_refused() -> None:
    # Steps are "a delay after the placement of the case": -3 days is not after it.
    assert error_of(with_step(0, after_days=-3)).where == "steps[1].after_days"


@pytest.mark.parametrize("field", ["key", "version", "name", "steps"])
def test_missing_top_level_field_is_named(field: str) -> None:
    data = doc()
    del data[field]
    error = error_of(data)
    assert error.where == field
    assert error.problem == "is required"


@pytest.mark.parametrize("steps", [[], {}, "first", None])
def test_steps_must_be_a_non_empty_list(steps: object) -> None:
    assert error_of(doc(steps=steps)).where == "steps"


def test_a_step_must_be_a_mapping() -> None:
    data = doc()
    data["steps"][1] = "sms"
    assert error_of(data).where == "steps[2]"


@pytest.mark.parametrize("source", ["- a list\n- not a mapping\n", "just text", ""])
def test_document_must_be_a_mapping(source: str) -> None:
    assert error_of(source).where == "document"


def test_the_first_error_in_document_order_is_reported() -> None:
    data = with_step(1, action="sue")
    data["steps"][2]["id"] = "first"
    assert error_of(data).where == "steps[2].action"


def test_invalid_yaml_names_its_line() -> None:
    error = error_of("key: test\nversion: 1\nname: [unclosed\nsteps: []\n")
    assert error.where == "document"
    assert error.line is not None and error.line >= 3
    assert "invalid YAML" in error.problem
