"""The condition language: parsed by a small parser, never eval'd; precise errors by column."""

from __future__ import annotations

import builtins
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relance.strategies.conditions import FIELDS, ConditionError, parse_condition

FACTS = {
    "outstanding": Decimal("120.50"),
    "days_past_due": 12,
    "segment": "b2c",
    "creditor": "shop",
    "has_email": True,
    "has_phone": False,
    "variant": "A",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("outstanding >= 100", True),
        ("outstanding < 100", False),
        ("outstanding == 120.5", True),
        ("segment == 'b2c' and outstanding < 300", True),
        ('segment == "b2b" or days_past_due > 10', True),
        ("not has_phone", True),
        ("has_email and not (days_past_due < 30)", False),
        ("segment in ['b2b', 'b2c']", True),
        ("creditor not in ['shop', 'other']", False),
        ("variant != 'B'", True),
        ("true", True),
        ("(((has_email)))", True),
        ("days_past_due >= -5", True),
    ],
)
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate(FACTS) is expected


def test_unknown_fact_satisfies_no_comparison() -> None:
    # No due date: days_past_due is None; neither < nor >= holds.
    facts = {**FACTS, "days_past_due": None}
    assert parse_condition("days_past_due < 5").evaluate(facts) is False
    assert parse_condition("days_past_due >= 5").evaluate(facts) is False


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("outstanding >= ", 16, "ends where a value"),
        ("amount > 3", 1, "unknown field 'amount'"),
        ("segment > 'b2b'", 9, "numbers only"),
        ("outstanding == 'high'", 13, "cannot compare number"),
        ("outstanding", 1, "not true or false"),
        ("segment == 'b2c", 12, "not closed"),
        ("outstanding > 3 3", 17, "unexpected '3'"),
        ("(has_email", 11, "expected ')'"),
        ("segment in 'b2b'", 9, "needs a list"),
        ("segment in [1, 2]", 9, "the list holds number"),
        ("__import__('os')", 1, "unknown field '__import__'"),
        ("has_email; drop", 10, "unexpected character ';'"),
        ("", 1, "empty"),
    ],
)
def test_errors_name_the_column_and_the_problem(text: str, column: int, words: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert info.value.column == column, info.value
    assert words in info.value.problem
    assert str(info.value).startswith(f"column {column}: ")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ConditionError, match="nested"):
        parse_condition("(" * 200 + "has_email" + ")" * 200)
    with pytest.raises(ConditionError, match="nested"):
        parse_condition("not " * 60 + "has_email")


def test_fields_used_are_known() -> None:
    assert parse_condition("outstanding > 1 and segment == 'b2b'").fields == {"outstanding", "segment"}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_any_text_parses_or_gives_a_precise_error_and_never_runs_code(text: str) -> None:
    calls: list[str] = []
    real_eval, real_exec, real_import = builtins.eval, builtins.exec, builtins.__import__

    def spy(name: str):
        def record(*args, **kwargs):
            calls.append(name)
            return {"eval": real_eval, "exec": real_exec}[name](*args, **kwargs)

        return record

    builtins.eval, builtins.exec = spy("eval"), spy("exec")  # type: ignore[assignment]
    try:
        try:
            condition = parse_condition(text)
        except ConditionError as exc:
            assert 1 <= exc.column <= len(text) + 1
            assert exc.problem
        else:
            assert condition.fields <= set(FIELDS)
            assert isinstance(condition.evaluate(FACTS), bool)
    finally:
        builtins.eval, builtins.exec, builtins.__import__ = real_eval, real_exec, real_import
    assert calls == []


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["outstanding", "days_past_due"]),
    st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    st.integers(min_value=-10_000, max_value=10_000),
    st.integers(min_value=-10_000, max_value=10_000),
)
def test_number_comparisons_agree_with_python(field: str, op: str, value: int, fact: int) -> None:
    import operator

    ops = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }
    assert parse_condition(f"{field} {op} {value}").evaluate({field: fact}) is ops[op](fact, value)
