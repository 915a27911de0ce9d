"""Loading strategy documents into the database."""

from __future__ import annotations

from importlib import resources

from django.db import transaction

from relance.audit.services import audit_record
from relance.core.errors import ConflictError
from relance.strategies.document import parse_strategy
from relance.strategies.models import Strategy
from relance.tenancy.actors import Actor


@transaction.atomic
def strategy_save(*, source: str, make_default: bool = False, actor: Actor) -> Strategy:
    """Validate and store a strategy version; an identical existing version is returned as is."""
    doc = parse_strategy(source)
    strategy, created = Strategy.objects.get_or_create(
        key=doc.key, version=doc.version, defaults={"name": doc.name, "source": source}
    )
    if not created and strategy.source != source:
        raise ConflictError(f"Strategy {doc.key} v{doc.version} exists with other content: bump the version.")
    if make_default and not strategy.is_default:
        Strategy.objects.filter(is_default=True).update(is_default=False)
        strategy.is_default = True
        strategy.save(update_fields=["is_default", "updated_at"])
    if created:
        audit_record(
            actor=actor, verb="strategy.saved", subject=strategy, data={"key": doc.key, "version": doc.version}
        )
    return strategy


def strategy_install_default(*, actor: Actor) -> Strategy:
    source = resources.files("relance.strategies").joinpath("default.yaml").read_text(encoding="utf-8")
    return strategy_save(source=source, make_default=True, actor=actor)
