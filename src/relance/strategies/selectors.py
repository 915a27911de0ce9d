"""Reads of strategies, with parsed documents cached per (key, version): versions never change."""

from __future__ import annotations

from functools import lru_cache

from relance.strategies.document import StrategyDoc, parse_strategy
from relance.strategies.models import Strategy


def strategy_default() -> Strategy:
    strategy = Strategy.objects.filter(is_default=True).first()
    if strategy is None:
        raise LookupError("No default strategy: run `relance migrate` (it installs one).")
    return strategy


@lru_cache(maxsize=256)
def _parsed(key: str, version: int, source: str) -> StrategyDoc:
    return parse_strategy(source)


def strategy_doc(*, key: str, version: int) -> StrategyDoc:
    source = Strategy.objects.values_list("source", flat=True).get(key=key, version=version)
    return _parsed(key, version, source)
