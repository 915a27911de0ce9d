"""The condition language of strategy documents: comparisons on a fixed set of case facts (pure).

A condition is a short text such as ``outstanding >= 300 and segment == 'b2c'`` or
``has_phone and not (days_past_due < 30)``. It is tokenised and parsed here into a small tree that
is evaluated against a mapping of facts; nothing is ever handed to ``eval``, no attribute or name
outside ``FIELDS`` can be reached, and every mistake is a ``ConditionError`` naming the column.

Grammar::

    expr    := and_ ("or" and_)*
    and_    := not_ ("and" not_)*
    not_    := "not" not_ | atom
    atom    := "(" expr ")" | value [op value]
    op      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in"
    value   := FIELD | NUMBER | 'text' | "text" | true | false | "[" value ("," value)* "]"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# The facts a condition may read, with their type. ``outstanding`` is in major units (euros).
FIELDS: dict[str, str] = {
    "outstanding": "number",
    "days_past_due": "number",
    "days_since_placement": "number",
    "contacts_sent": "number",
    "claims": "number",
    "segment": "text",
    "creditor": "text",
    "debtor_kind": "text",
    "language": "text",
    "variant": "text",
    "status": "text",
    "has_email": "bool",
    "has_phone": "bool",
    "has_address": "bool",
}

MAX_LENGTH = 500
MAX_DEPTH = 20
_OPS = ("==", "!=", "<=", ">=", "<", ">", "in", "not in")
_ORDERED = frozenset({"<", "<=", ">", ">="})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<text>'[^'\\\n]*'|"[^"\\\n]*")
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()\[\],])
      | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    )""",
    re.VERBOSE,
)


class ConditionError(ValueError):
    """A condition that does not parse or does not type-check; ``column`` is 1-based."""

    def __init__(self, column: int, problem: str) -> None:
        super().__init__(f"column {column}: {problem}")
        self.column = column
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | text | op | punct | word | end
    value: str
    column: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: Decimal | str | bool | tuple[Decimal | str | bool, ...]
    type: str  # number | text | bool | list:<type>


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Field | Literal
    right: Field | Literal


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Truth:
    """A bare boolean value used as a condition (``has_phone``, ``true``)."""

    value: Field | Literal


Node = Compare | Not | BoolOp | Truth


@dataclass(frozen=True, slots=True)
class Condition:
    source: str
    tree: Node

    def evaluate(self, facts: Mapping[str, object]) -> bool:
        return _eval(self.tree, facts)

    @property
    def fields(self) -> frozenset[str]:
        return _fields(self.tree)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            column = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            char = text[column - 1] if column - 1 < len(text) else ""
            if char in "'\"":
                raise ConditionError(column, "text is not closed by a matching quote")
            raise ConditionError(column, f"unexpected character {char!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append(Token(kind, value, match.start(kind) + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def parse_condition(text: object) -> Condition:
    """Parse and type-check ``text``; raises ``ConditionError`` with the column of the problem."""
    if isinstance(text, bool) and text:
        return Condition("true", Truth(Literal(value=True, type="bool")))
    if not isinstance(text, str):
        raise ConditionError(1, 'a condition must be text, e.g. "outstanding >= 100"')
    if len(text) > MAX_LENGTH:
        raise ConditionError(MAX_LENGTH + 1, f"a condition is at most {MAX_LENGTH} characters")
    if not text.strip():
        raise ConditionError(1, "the condition is empty")
    parser = _Parser(tokenize(text))
    tree = parser.expr(0)
    token = parser.peek()
    if token.kind != "end":
        raise ConditionError(token.column, f"unexpected {token.value!r} (expected and, or, or the end)")
    return Condition(text, tree)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.value == word

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ConditionError(self.peek().column, f"nested more than {MAX_DEPTH} levels deep")
        operands = [self.and_(depth)]
        while self.is_word("or"):
            self.take()
            operands.append(self.and_(depth))
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_(self, depth: int) -> Node:
        operands = [self.not_(depth)]
        while self.is_word("and"):
            self.take()
            operands.append(self.not_(depth))
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_(self, depth: int) -> Node:
        if self.is_word("not"):
            self.take()
            if depth > MAX_DEPTH:
                raise ConditionError(self.peek().column, f"nested more than {MAX_DEPTH} levels deep")
            return Not(self.not_(depth + 1))
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        token = self.peek()
        if token.kind == "punct" and token.value == "(":
            self.take()
            inner = self.expr(depth + 1)
            closing = self.take()
            if closing.kind != "punct" or closing.value != ")":
                raise ConditionError(closing.column, f"expected ')' to close the '(' at column {token.column}")
            return inner
        left = self.value()
        op_token = self.peek()
        op = ""
        if op_token.kind == "op" or (op_token.kind == "word" and op_token.value == "in"):
            op = self.take().value
        elif op_token.kind == "word" and op_token.value == "not":
            nxt = self.tokens[self.pos + 1]
            if nxt.kind == "word" and nxt.value == "in":
                self.take()
                self.take()
                op = "not in"
        if not op:
            if _type_of(left) != "bool":
                raise ConditionError(
                    token.column, f"{_describe(left)} is not true or false: compare it (==, !=, <, <=, >, >=, in)"
                )
            return Truth(left)
        right = self.value()
        return _check_compare(op, left, right, op_token.column)

    def value(self) -> Field | Literal:
        token = self.take()
        if token.kind == "number":
            try:
                return Literal(Decimal(token.value), "number")
            except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
                raise ConditionError(token.column, f"{token.value!r} is not a number") from None
        if token.kind == "text":
            return Literal(token.value[1:-1], "text")
        if token.kind == "word":
            if token.value in ("true", "false"):
                return Literal(token.value == "true", "bool")
            if token.value in FIELDS:
                return Field(token.value, FIELDS[token.value])
            if token.value in ("and", "or", "not", "in"):
                raise ConditionError(token.column, f"expected a value before {token.value!r}")
            known = ", ".join(sorted(FIELDS))
            raise ConditionError(token.column, f"unknown field {token.value!r} (known fields: {known})")
        if token.kind == "punct" and token.value == "[":
            items: list[Literal] = []
            while True:
                item = self.value()
                if not isinstance(item, Literal) or item.type.startswith("list"):
                    raise ConditionError(token.column, "a list holds numbers, texts or true/false only")
                items.append(item)
                sep = self.take()
                if sep.kind == "punct" and sep.value == "]":
                    break
                if sep.kind != "punct" or sep.value != ",":
                    raise ConditionError(sep.column, "expected ',' or ']' in the list")
            types = {i.type for i in items}
            if len(types) != 1:
                raise ConditionError(token.column, "a list mixes numbers, texts and true/false")
            return Literal(tuple(i.value for i in items), "list:" + types.pop())  # type: ignore[misc]
        if token.kind == "end":
            raise ConditionError(token.column, "the condition ends where a value is expected")
        raise ConditionError(token.column, f"expected a field, a number or a 'text', not {token.value!r}")


def _type_of(value: Field | Literal) -> str:
    return value.type


def _describe(value: Field | Literal) -> str:
    return f"field {value.name!r}" if isinstance(value, Field) else f"value {value.value!r}"


def _check_compare(op: str, left: Field | Literal, right: Field | Literal, column: int) -> Compare:
    lt, rt = _type_of(left), _type_of(right)
    if op in ("in", "not in"):
        if not rt.startswith("list:"):
            raise ConditionError(column, f"'{op}' needs a list on its right, e.g. segment in ['b2b', 'b2c']")
        if rt != f"list:{lt}":
            raise ConditionError(column, f"{_describe(left)} is {lt}, the list holds {rt[5:]}")
        return Compare(op, left, right)
    if lt.startswith("list:") or rt.startswith("list:"):
        raise ConditionError(column, f"a list can only follow 'in' or 'not in', not {op!r}")
    if lt != rt:
        raise ConditionError(column, f"cannot compare {lt} ({_describe(left)}) with {rt} ({_describe(right)})")
    if op in _ORDERED and lt != "number":
        raise ConditionError(column, f"{op!r} compares numbers only; use == or != for {lt}")
    return Compare(op, left, right)


def _value(item: Field | Literal, facts: Mapping[str, object]) -> object:
    if isinstance(item, Literal):
        return item.value
    value = facts.get(item.name)
    if item.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _eval(node: Node, facts: Mapping[str, object]) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(_eval(o, facts) for o in node.operands)
        return any(_eval(o, facts) for o in node.operands)
    if isinstance(node, Not):
        return not _eval(node.operand, facts)
    if isinstance(node, Truth):
        return _value(node.value, facts) is True
    left, right = _value(node.left, facts), _value(node.right, facts)
    if left is None or right is None:
        return False  # an unknown fact (e.g. no due date) satisfies no comparison
    if node.op == "==":
        return left == right
    if node.op == "!=":
        return left != right
    if node.op in ("in", "not in"):
        found = left in right  # type: ignore[operator]
        return found if node.op == "in" else not found
    a, b = Decimal(str(left)), Decimal(str(right))
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]


def _fields(node: Node) -> frozenset[str]:
    if isinstance(node, BoolOp):
        return frozenset().union(*(_fields(o) for o in node.operands))
    if isinstance(node, Not):
        return _fields(node.operand)
    items = (node.value,) if isinstance(node, Truth) else (node.left, node.right)
    return frozenset(i.name for i in items if isinstance(i, Field))
