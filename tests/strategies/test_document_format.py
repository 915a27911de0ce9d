"""The strategy format beyond plain steps: delays, conditions, actions, variants, reactions, routing.

Errors name the YAML line, the place and the problem (issue 4).
"""

from __future__ import annotations

from importlib.resources import files

import pytest

from relance.strategies.document import (
    ACTIONS,
    EVENTS,
    Delay,
    StrategyDocumentError,
    parse_strategy,
)

HEAD = 'key: t\nversion: 1\nname: "T"\n'


def error_of(source: str) -> StrategyDocumentError:
    with pytest.raises(StrategyDocumentError) as info:
        parse_strategy(source)
    return info.value


@pytest.mark.parametrize("name", ["default.yaml", "b2c_small.yaml", "b2c_high.yaml", "b2b_pre_due.yaml"])
def test_shipped_strategies_parse(name: str) -> None:
    doc = parse_strategy(files("relance.strategies").joinpath(name).read_text(encoding="utf-8"))
    assert doc.steps


def test_shipped_strategies_cover_the_issue() -> None:
    load = lambda n: parse_strategy(files("relance.strategies").joinpath(n).read_text(encoding="utf-8"))  # noqa: E731
    small, high, b2b = load("b2c_small.yaml"), load("b2c_high.yaml"), load("b2b_pre_due.yaml")
    assert [v.name for v in small.variants] == ["A", "B"]
    assert b2b.steps[0].delay == Delay("due", -5)  # pre-due reminder
    assert {s.action for s in high.steps} >= {"letter", "email", "sms", "call", "escalate", "return_to_creditor"}
    assert small.applies_to is not None and b2b.applies_to is not None
    assert {r.on for d in (small, high, b2b) for r in d.reactions} >= {"promise_broken", "payment_partial", "bounce"}


@pytest.mark.parametrize(
    ("at", "delay"),
    [
        ("placement + 7d", Delay("placement", 7)),
        ("previous + 3d", Delay("previous", 3)),
        ("due - 5d", Delay("due", -5)),
        ("due", Delay("due", 0)),
        ("promise + 1 day", Delay("promise", 1)),
        ("due + 10 days", Delay("due", 10)),
    ],
)
def test_delay_kinds(at: str, delay: Delay) -> None:
    doc = parse_strategy(HEAD + f"steps:\n  - id: s\n    at: {at}\n    action: wait\n")
    assert doc.steps[0].delay == delay


def test_errors_name_the_line() -> None:
    source = HEAD + (
        "steps:\n"
        "  - id: first\n"
        "    at: placement + 0d\n"
        "    action: email\n"
        "    template: first_notice\n"
        "  - id: second\n"
        "    at: placement + 3d\n"
        "    action: fax\n"  # line 11
    )
    error = error_of(source)
    assert (error.line, error.where) == (11, "steps[2].action")
    assert str(error).startswith("line 11: steps[2].action: 'fax' is not one of")


def test_missing_field_points_at_its_step() -> None:
    source = HEAD + "steps:\n  - id: first\n    at: placement + 0d\n    action: sms\n"
    error = error_of(source)
    assert error.where == "steps[1].template"
    assert error.line == 5  # the step's first line


def test_yaml_syntax_error_has_a_line() -> None:
    error = error_of(HEAD + "steps:\n  - id: a\n    action: [email\n  - id: b\n")
    assert error.line is not None and error.line >= 6
    assert "invalid YAML" in error.problem


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("placement - 3d", "only due and promise"),
        ("tomorrow", "is not a delay"),
        ("due * 3", "is not a delay"),
    ],
)
def test_bad_delays(at: str, words: str) -> None:
    error = error_of(HEAD + f"steps:\n  - id: s\n    at: {at}\n    action: wait\n")
    assert error.where == "steps[1].at"
    assert error.line == 6
    assert words in error.problem


def test_bad_condition_names_line_and_column() -> None:
    error = error_of(HEAD + 'steps:\n  - id: s\n    after_days: 0\n    action: wait\n    when: "outstanding >> 3"\n')
    assert (error.line, error.where) == (8, "steps[1].when")
    assert "column 14" in error.problem


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_kind(action: str) -> None:
    template = "\n    template: first_notice" if action in {"email", "sms", "letter", "call"} else ""
    doc = parse_strategy(HEAD + f"steps:\n  - id: s\n    after_days: 0\n    action: {action}{template}\n")
    assert doc.steps[0].action == action


def test_non_contact_step_takes_no_template() -> None:
    error = error_of(HEAD + "steps:\n  - id: s\n    after_days: 0\n    action: close\n    template: x\n")
    assert error.where == "steps[1].template"


def test_variants_must_add_up_to_100_and_be_known_to_steps() -> None:
    bad_split = (
        HEAD
        + "variants:\n  - {name: A, share: 50}\n  - {name: B, share: 40}\n"
        + "steps:\n  - {id: s, after_days: 0, action: wait}\n"
    )
    assert "add up to 90" in error_of(bad_split).problem
    unknown = HEAD + (
        "variants:\n  - {name: A, share: 50}\n  - {name: B, share: 50}\n"
        "steps:\n  - {id: s, after_days: 0, action: wait, variants: [C]}\n"
    )
    error = error_of(unknown)
    assert error.where == "steps[1].variants"
    assert "'C'" in error.problem


@pytest.mark.parametrize("event", EVENTS)
def test_reactions_to_every_event(event: str) -> None:
    doc = parse_strategy(
        HEAD + f"steps:\n  - {{id: s, after_days: 0, action: wait}}\nreactions:\n  - on: {event}\n    goto: s\n"
    )
    assert doc.reactions[0].on == event
    assert doc.reactions[0].goto == "s"


def test_reaction_errors() -> None:
    steps = "steps:\n  - {id: s, after_days: 0, action: wait}\n"
    assert error_of(HEAD + steps + "reactions:\n  - on: payday\n    goto: s\n").where == "reactions[1].on"
    assert error_of(HEAD + steps + "reactions:\n  - on: bounce\n    goto: nowhere\n").where == "reactions[1].goto"
    assert error_of(HEAD + steps + "reactions:\n  - on: bounce\n").where == "reactions[1]"


def test_unknown_fields_are_typos_not_ignored() -> None:
    error = error_of(HEAD + "steps:\n  - id: s\n    after_days: 0\n    action: wait\n    tempalte: x\n")
    assert error.where == "steps[1].tempalte"
    assert error.line == 8
