"""Writes on agencies, creditors, users and API keys."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from relance.audit.services import audit_record
from relance.core.errors import ConflictError
from relance.tenancy.actors import Actor
from relance.tenancy.models import ApiKey, Creditor, User
from relance.tenancy.permissions import is_second_factor_required


class SecondFactorRequiredError(ConflictError):
    code = "user.second_factor_required"
    title = "Two-factor authentication is mandatory"


@transaction.atomic
def api_key_create(*, creditor: Creditor, name: str, scopes: Iterable[str], actor: Actor) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned once and only its SHA-256 is stored."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    secret = ApiKey.generate_secret()
    key = ApiKey.objects.create(
        creditor=creditor,
        name=name,
        key_prefix=secret[:10],
        key_hash=ApiKey.hash_secret(secret),
        scopes=scopes,
    )
    audit_record(actor=actor, verb="api_key.created", subject=key, data={"creditor": creditor.pk, "scopes": scopes})
    return key, secret


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The live key for ``secret``, or ``None``; comparison is on the hash (constant-time lookup)."""
    if not secret.startswith(ApiKey.PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("creditor")
        .filter(key_hash=ApiKey.hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key at once: the next request made with it gets 401. Revoking twice changes nothing."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(actor=actor, verb="api_key.revoked", subject=key, data={"creditor": key.creditor_id})
    return key


RECOVERY_CODES = 10


def second_factor_begin(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator for ``user`` (replaces any earlier unconfirmed one)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


@transaction.atomic
def second_factor_confirm(*, user: User, device: TOTPDevice, token: str, actor: Actor) -> list[str] | None:
    """Confirm ``device`` with a code from the app; returns fresh recovery codes, or ``None`` if wrong.

    The user's other authenticators are removed: one phone at a time, so a lost one is clearly gone.
    """
    if device.user_id != user.pk or device.confirmed or not device.verify_token(token.strip()):
        return None
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _recovery_codes_replace(user=user)
    audit_record(actor=actor, verb="user.second_factor_enabled", subject=user, data={"device": device.pk})
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User, actor: Actor) -> list[str]:
    """New single-use recovery codes; the old ones stop working."""
    codes = _recovery_codes_replace(user=user)
    audit_record(actor=actor, verb="user.recovery_codes_regenerated", subject=user, data={"count": len(codes)})
    return codes


def _recovery_codes_replace(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def second_factor_disable(*, user: User, actor: Actor) -> None:
    """Remove a creditor user's authenticator and recovery codes (refused where 2FA is mandatory)."""
    if second_factor_required(user=user, ignore_devices=True):
        raise SecondFactorRequiredError("Two-factor authentication is mandatory for this account.")
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    audit_record(actor=actor, verb="user.second_factor_disabled", subject=user, data={})


def second_factor_required(*, user: User, ignore_devices: bool = False) -> bool:
    """Staff always; a creditor user when their creditor requires it or they set up an authenticator."""
    creditor_requires = bool(user.creditor_id and user.creditor and user.creditor.require_2fa)
    has_device = not ignore_devices and user_has_device(user)
    return is_second_factor_required(role=user.role, creditor_requires=creditor_requires, has_device=has_device)


@transaction.atomic
def creditor_require_2fa_set(*, creditor: Creditor, required: bool, actor: Actor) -> Creditor:
    """The creditor admin's switch: users without an authenticator must set one up at their next page."""
    if creditor.require_2fa != required:
        creditor.require_2fa = required
        creditor.save(update_fields=["require_2fa", "updated_at"])
        audit_record(actor=actor, verb="creditor.require_2fa_set", subject=creditor, data={"required": required})
    return creditor
