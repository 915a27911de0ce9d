"""Strategy documents: parsing and validation (pure).

A strategy is a versioned YAML document (format: docs/strategies.md): ordered steps, each with a
delay, an optional condition and an action; reactions to events; optional A/B/n variants with a
split; optional routing (``applies_to``) so new cases pick it. Every error names the line of the
YAML source (when parsed from text), the place (``steps[2].template``) and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from relance.strategies.conditions import Condition, ConditionError, parse_condition

CONTACT_ACTIONS = frozenset({"email", "sms", "letter", "call"})
END_ACTIONS = frozenset({"return_to_creditor", "close"})
OTHER_ACTIONS = frozenset({"wait", "escalate"})
ACTIONS = CONTACT_ACTIONS | END_ACTIONS | OTHER_ACTIONS

# Delay anchors: placement of the case, the previous step, the (earliest) due date, the promise date.
ANCHORS = ("placement", "previous", "due", "promise")
# Events a strategy may react to (strategies.events maps the platform's records onto them).
EVENTS = (
    "payment_full",
    "payment_partial",
    "promise_made",
    "promise_broken",
    "instalment_missed",
    "dispute_opened",
    "dispute_answered",
    "bounce",
    "portal_visit",
    "opt_out",
)
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_DELAY = re.compile(r"^\s*(placement|previous|due|promise)\s*(?:([+-])\s*(\d{1,4})\s*d(?:ays?)?)?\s*$")
_TOP_FIELDS = ("key", "version", "name", "description", "applies_to", "priority", "variants", "steps", "reactions")
_STEP_FIELDS = ("id", "after_days", "at", "action", "template", "when", "variants", "reason")
_REACTION_FIELDS = ("on", "when", "action", "template", "goto", "reason")

Path = tuple[str | int, ...]


class StrategyDocumentError(ValueError):
    """A document that is not a valid strategy: ``line`` (1-based, when known), ``where`` and ``problem``."""

    def __init__(self, where: str, problem: str, line: int | None = None) -> None:
        prefix = f"line {line}: " if line else ""
        super().__init__(f"{prefix}{where}: {problem}")
        self.where = where
        self.problem = problem
        self.line = line


@dataclass(frozen=True, slots=True)
class Delay:
    anchor: str  # placement | previous | due | promise
    days: int

    def __str__(self) -> str:
        sign = "-" if self.days < 0 else "+"
        return f"{self.anchor} {sign} {abs(self.days)}d"


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    delay: Delay
    action: str
    template: str = ""
    when: Condition | None = None
    variants: tuple[str, ...] = ()
    reason: str = ""

    @property
    def is_contact(self) -> bool:
        return self.action in CONTACT_ACTIONS

    @property
    def after_days(self) -> int:
        """Days after placement (for placement-anchored steps; the legacy ``after_days`` field)."""
        return self.delay.days if self.delay.anchor == "placement" else 0

    def applies_to_variant(self, variant: str) -> bool:
        return not self.variants or variant in self.variants


@dataclass(frozen=True, slots=True)
class Reaction:
    on: str
    action: str = ""
    template: str = ""
    when: Condition | None = None
    goto: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    share: int  # percent; the shares of a document add up to 100


@dataclass(frozen=True, slots=True)
class StrategyDoc:
    key: str
    version: int
    name: str
    steps: tuple[Step, ...]
    reactions: tuple[Reaction, ...] = ()
    variants: tuple[Variant, ...] = ()
    applies_to: Condition | None = None
    priority: int = 0
    description: str = ""

    def step_key(self, step: Step) -> str:
        return f"{self.key}:v{self.version}:{step.id}"

    def reaction_key(self, index: int, event_id: int) -> str:
        """One outbox key per (reaction, event occurrence): a reaction never fires twice for one event."""
        return f"{self.key}:v{self.version}:on{index}:{self.reactions[index].on}:{event_id}"

    def step_index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)

    @property
    def templates(self) -> tuple[tuple[str, str], ...]:
        """(channel, template) pairs the document uses."""
        pairs = [(s.action, s.template) for s in self.steps if s.is_contact]
        pairs += [(r.action, r.template) for r in self.reactions if r.action in CONTACT_ACTIONS]
        return tuple(dict.fromkeys(pairs))


def _fmt(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "document"


class _Context:
    """Raises errors with the YAML line of the closest known place."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines

    def fail(self, path: Path, problem: str) -> StrategyDocumentError:
        probe = path
        line = None
        while True:
            if probe in self.lines:
                line = self.lines[probe]
                break
            if not probe:
                break
            probe = probe[:-1]
        return StrategyDocumentError(_fmt(path), problem, line)


def _line_map(source: str) -> dict[Path, int]:
    """(path -> 1-based line) for every mapping value and list item of the YAML source."""
    lines: dict[Path, int] = {}
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: Path) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    # Point at the key's line: the value may start on the next one.
                    walk(value_node, (*path, key_node.value))
                    lines[(*path, key_node.value)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    if root is not None:
        walk(root, ())
    return lines


def parse_strategy(source: str | dict[str, Any]) -> StrategyDoc:
    """Parse and validate a strategy; the first problem in document order is raised."""
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            problem = f"invalid YAML: {exc.problem or exc.context}"
            raise StrategyDocumentError("document", problem, line) from None
        except yaml.YAMLError as exc:
            raise StrategyDocumentError("document", f"invalid YAML: {exc}") from None
        ctx = _Context(_line_map(source))
    else:
        data, ctx = source, _Context({})
    if not isinstance(data, dict):
        raise ctx.fail((), "must be a mapping with key, version, name, steps")
    for field in ("key", "version", "name", "steps"):
        if field not in data:
            raise ctx.fail((field,), "is required")
    unknown = [k for k in data if k not in _TOP_FIELDS]
    if unknown:
        raise ctx.fail((str(unknown[0]),), f"unknown field (allowed: {', '.join(_TOP_FIELDS)})")
    key = data["key"]
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ctx.fail(("key",), "must be lower-case letters, digits, - or _ (at most 60)")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ctx.fail(("version",), "must be a positive integer")
    if not isinstance(data["name"], str) or not data["name"].strip():
        raise ctx.fail(("name",), "must be a non-empty text")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ctx.fail(("priority",), "must be an integer (higher wins when several strategies apply)")
    applies_to = _condition(ctx, ("applies_to",), data["applies_to"]) if "applies_to" in data else None
    variants = _variants(ctx, data.get("variants"))
    variant_names = {v.name for v in variants}
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ctx.fail(("steps",), "must be a non-empty list")
    steps: list[Step] = []
    seen: set[str] = set()
    last_by_anchor: dict[str, int] = {}
    for index, raw in enumerate(raw_steps):
        step = _step(ctx, index, raw, seen, variant_names)
        # Steps anchored on the same date must be in chronological order (others are checked live).
        previous = last_by_anchor.get(step.delay.anchor)
        if step.delay.anchor in ("placement", "due") and previous is not None and step.delay.days < previous:
            field = "after_days" if "after_days" in raw else "at"
            raise ctx.fail(("steps", index, field), "steps must be in chronological order")
        last_by_anchor[step.delay.anchor] = step.delay.days
        steps.append(step)
    reactions = _reactions(ctx, data.get("reactions"), {s.id for s in steps})
    return StrategyDoc(
        key=key,
        version=version,
        name=data["name"].strip(),
        steps=tuple(steps),
        reactions=reactions,
        variants=variants,
        applies_to=applies_to,
        priority=priority,
        description=str(data.get("description") or "").strip(),
    )


def _condition(ctx: _Context, path: Path, raw: object) -> Condition:
    try:
        return parse_condition(raw)
    except ConditionError as exc:
        raise ctx.fail(path, f"condition {exc}") from None


def _text(ctx: _Context, path: Path, raw: object, what: str) -> str:
    if not isinstance(raw, str):
        raise ctx.fail(path, f"must be {what}")
    return raw


def _delay(ctx: _Context, base: Path, raw: dict[str, Any]) -> Delay:
    if "after_days" in raw and "at" in raw:
        raise ctx.fail((*base, "at"), "give either after_days or at, not both")
    if "at" in raw:
        at = raw["at"]
        match = _DELAY.match(at) if isinstance(at, str) else None
        if match is None:
            raise ctx.fail(
                (*base, "at"),
                f"{at!r} is not a delay: write '<anchor> + <n>d' or '<anchor> - <n>d' with anchor one of "
                + ", ".join(ANCHORS),
            )
        anchor, sign, days = match.group(1), match.group(2), int(match.group(3) or 0)
        days = -days if sign == "-" else days
        if days < 0 and anchor in ("placement", "previous"):
            raise ctx.fail((*base, "at"), f"cannot be before the {anchor} (only due and promise take - days)")
        return Delay(anchor, days)
    after = raw.get("after_days")
    if not isinstance(after, int) or isinstance(after, bool):
        raise ctx.fail((*base, "after_days"), "must be an integer number of days (or give at: 'due - 5d')")
    if after < 0:
        raise ctx.fail((*base, "after_days"), "must be 0 or more days after placement")
    return Delay("placement", after)


def _action(ctx: _Context, base: Path, raw: dict[str, Any], *, optional: bool = False) -> tuple[str, str]:
    action = raw.get("action")
    if action is None and optional:
        return "", ""
    if action not in ACTIONS:
        raise ctx.fail((*base, "action"), f"{action!r} is not one of {', '.join(sorted(ACTIONS))}")
    template = raw.get("template", "")
    if not isinstance(template, str):
        raise ctx.fail((*base, "template"), "must be a template name")
    if action in CONTACT_ACTIONS and not template:
        raise ctx.fail((*base, "template"), f"is required for a {action} step")
    if action not in CONTACT_ACTIONS and template:
        raise ctx.fail((*base, "template"), f"a {action} step sends nothing: remove the template")
    if template and not ID_PATTERN.match(template):
        raise ctx.fail((*base, "template"), "letters, digits, - and _ only")
    return str(action), template


def _step(ctx: _Context, index: int, raw: object, seen: set[str], variant_names: set[str]) -> Step:
    base: Path = ("steps", index)
    if not isinstance(raw, dict):
        raise ctx.fail(base, "must be a mapping")
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not step_id:
        raise ctx.fail((*base, "id"), "is required")
    if not ID_PATTERN.match(step_id):
        raise ctx.fail((*base, "id"), "letters, digits, - and _ only (at most 40)")
    if step_id in seen:
        raise ctx.fail((*base, "id"), f"duplicate id {step_id!r}")
    seen.add(step_id)
    unknown = [k for k in raw if k not in _STEP_FIELDS]
    if unknown:
        raise ctx.fail((*base, str(unknown[0])), f"unknown field (allowed: {', '.join(_STEP_FIELDS)})")
    delay = _delay(ctx, base, raw)
    action, template = _action(ctx, base, raw)
    when = _condition(ctx, (*base, "when"), raw["when"]) if "when" in raw else None
    variants: tuple[str, ...] = ()
    if "variants" in raw:
        names = raw["variants"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ctx.fail((*base, "variants"), "must be a non-empty list of variant names")
        for name in names:
            if name not in variant_names:
                declared = ", ".join(sorted(variant_names)) or "none declared"
                raise ctx.fail((*base, "variants"), f"unknown variant {name!r} ({declared})")
        variants = tuple(names)
    reason = _text(ctx, (*base, "reason"), raw.get("reason", ""), "a text")
    return Step(step_id, delay, action, template, when, variants, reason)


def _variants(ctx: _Context, raw: object) -> tuple[Variant, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) < 2:
        raise ctx.fail(("variants",), "must list at least two variants, each with a name and a share")
    out: list[Variant] = []
    for index, item in enumerate(raw):
        path: Path = ("variants", index)
        if not isinstance(item, dict) or set(item) - {"name", "share"}:
            raise ctx.fail(path, "must be a mapping with name and share")
        name, share = item.get("name"), item.get("share")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_-]{1,20}$", name):
            raise ctx.fail((*path, "name"), "letters, digits, - and _ only (at most 20)")
        if name in {v.name for v in out}:
            raise ctx.fail((*path, "name"), f"duplicate variant {name!r}")
        if not isinstance(share, int) or isinstance(share, bool) or not 0 < share <= 100:
            raise ctx.fail((*path, "share"), "must be a whole percentage between 1 and 100")
        out.append(Variant(name, share))
    total = sum(v.share for v in out)
    if total != 100:
        raise ctx.fail(("variants",), f"shares add up to {total}, not 100")
    return tuple(out)


def _reactions(ctx: _Context, raw: object, step_ids: set[str]) -> tuple[Reaction, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail(("reactions",), "must be a list")
    out: list[Reaction] = []
    for index, raw_item in enumerate(raw):
        base: Path = ("reactions", index)
        if not isinstance(raw_item, dict):
            raise ctx.fail(base, "must be a mapping")
        # YAML 1.1 reads a bare ``on:`` key as the boolean true.
        item = {("on" if k is True else k): v for k, v in raw_item.items()}
        unknown = [k for k in item if k not in _REACTION_FIELDS]
        if unknown:
            raise ctx.fail((*base, str(unknown[0])), f"unknown field (allowed: {', '.join(_REACTION_FIELDS)})")
        on = item.get("on")
        if on not in EVENTS:
            raise ctx.fail((*base, "on"), f"{on!r} is not one of {', '.join(EVENTS)}")
        action, template = _action(ctx, base, item, optional=True)
        if action == "wait":
            raise ctx.fail((*base, "action"), "a reaction cannot wait: use goto to a step with a delay")
        goto = item.get("goto", "")
        if goto and goto not in step_ids:
            raise ctx.fail((*base, "goto"), f"no step has the id {goto!r}")
        if not action and not goto:
            raise ctx.fail(base, "a reaction needs an action, a goto, or both")
        when = _condition(ctx, (*base, "when"), item["when"]) if "when" in item else None
        reason = _text(ctx, (*base, "reason"), item.get("reason", ""), "a text")
        out.append(Reaction(str(on), action, template, when, str(goto), reason))
    return tuple(out)
