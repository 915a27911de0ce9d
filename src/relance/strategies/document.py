"""Strategy documents: parsing and validation (pure).

A strategy is a versioned YAML document: ordered steps, each with a delay after the placement of
the case and an action. Errors name the step and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

CONTACT_ACTIONS = frozenset({"email", "sms", "letter", "call"})
END_ACTIONS = frozenset({"return_to_creditor", "close"})


class StrategyDocumentError(ValueError):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    after_days: int
    action: str
    template: str = ""

    @property
    def is_contact(self) -> bool:
        return self.action in CONTACT_ACTIONS


@dataclass(frozen=True, slots=True)
class StrategyDoc:
    key: str
    version: int
    name: str
    steps: tuple[Step, ...]

    def step_key(self, step: Step) -> str:
        return f"{self.key}:v{self.version}:{step.id}"


def parse_strategy(source: str | dict[str, Any]) -> StrategyDoc:
    data = yaml.safe_load(source) if isinstance(source, str) else source
    if not isinstance(data, dict):
        raise StrategyDocumentError("document", "must be a mapping with key, version, name, steps")
    for field in ("key", "version", "name", "steps"):
        if field not in data:
            raise StrategyDocumentError(field, "is required")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool) or data["version"] < 1:
        raise StrategyDocumentError("version", "must be a positive integer")
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise StrategyDocumentError("steps", "must be a non-empty list")
    steps: list[Step] = []
    seen: set[str] = set()
    previous_day = 0
    for index, raw in enumerate(raw_steps, start=1):
        where = f"steps[{index}]"
        if not isinstance(raw, dict):
            raise StrategyDocumentError(where, "must be a mapping")
        step_id = raw.get("id")
        if not isinstance(step_id, str) or not step_id:
            raise StrategyDocumentError(f"{where}.id", "is required")
        if step_id in seen:
            raise StrategyDocumentError(f"{where}.id", f"duplicate id {step_id!r}")
        seen.add(step_id)
        after = raw.get("after_days")
        if not isinstance(after, int) or isinstance(after, bool):
            raise StrategyDocumentError(f"{where}.after_days", "must be an integer number of days")
        if after < 0:
            raise StrategyDocumentError(f"{where}.after_days", "must be 0 or more days after placement")
        if after < previous_day:
            raise StrategyDocumentError(f"{where}.after_days", "steps must be in chronological order")
        previous_day = after
        action = raw.get("action")
        if action not in CONTACT_ACTIONS | END_ACTIONS:
            allowed = ", ".join(sorted(CONTACT_ACTIONS | END_ACTIONS))
            raise StrategyDocumentError(f"{where}.action", f"{action!r} is not one of {allowed}")
        template = raw.get("template", "")
        if action in CONTACT_ACTIONS and not template:
            raise StrategyDocumentError(f"{where}.template", f"is required for a {action} step")
        steps.append(Step(id=step_id, after_days=after, action=action, template=template))
    return StrategyDoc(key=str(data["key"]), version=data["version"], name=str(data["name"]), steps=tuple(steps))
