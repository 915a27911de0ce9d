"""Log-in second step, two-factor enrolment and recovery codes, a creditor's 2FA requirement.

Issue 6: staff log in with a password (argon2) and a TOTP code, or a single-use recovery code;
creditor users may turn 2FA on, and their admin may require it. Wrong passwords are throttled by
django-axes, wrong codes by django-otp's per-device exponential delay.
"""

from __future__ import annotations

import base64

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from relance.audit.services import audit_record
from relance.backoffice.middleware import second_factor_enrolment, second_factor_step
from relance.core.errors import ConflictError
from relance.tenancy.access import actor_of, public, requires
from relance.tenancy.actors import Actor
from relance.tenancy.models import Creditor, User
from relance.tenancy.selectors import creditors_managed_by
from relance.tenancy.services import (
    creditor_require_2fa_set,
    recovery_codes_regenerate,
    second_factor_begin,
    second_factor_confirm,
    second_factor_disable,
    second_factor_required,
)

login = public(second_factor_step(auth_views.LoginView.as_view(template_name="backoffice/login.html")))
logout = public(second_factor_step(auth_views.LogoutView.as_view()))


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - the views below only run for logged-in users
    return user


def _next(request: HttpRequest) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/bo/"


@public
@second_factor_step
@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """The code step: a 6-digit code from the authenticator app, or a recovery code."""
    if not request.user.is_authenticated:
        return redirect("backoffice:login")
    user = _user(request)
    if user.is_verified():  # type: ignore[attr-defined]
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["code"].replace(" ", ""))
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                with transaction.atomic():
                    audit_record(
                        actor=Actor.for_user(user), verb="user.recovery_code_used", subject=user, data={"left": left}
                    )
                messages.warning(
                    request,
                    _("You used a recovery code; %(left)d left. Generate new ones on your security page.")
                    % {"left": left},
                )
            return redirect(_next(request))
        form.add_error("code", _("This code is not valid. Wait for the next code and try again."))
    return render(request, "backoffice/login_verify.html", {"form": form, "next": _next(request)})


def _pending_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or second_factor_begin(user=user)


def _enrolment_context(device: TOTPDevice) -> dict[str, object]:
    return {
        "device": device,
        # Rendered here as an SVG data URI: no external QR service, no script (CSP allows data: images).
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        "secret": base64.b32encode(device.bin_key).decode().rstrip("="),
    }


@requires("account.security")
@second_factor_enrolment
@require_http_methods(["GET", "POST"])
def security(request: HttpRequest) -> HttpResponse:
    """One's own two-factor authentication: set it up, new recovery codes, turn it off (creditors)."""
    user = _user(request)
    actor = actor_of(request)
    enabled = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    required = second_factor_required(user=user, ignore_devices=True)
    context: dict[str, object] = {"enabled": enabled, "required": required, "next": _next(request)}
    action = request.POST.get("action", "")
    form = CodeForm(request.POST if action == "confirm" else None)
    if request.method == "POST" and action == "confirm" and not enabled:
        device = TOTPDevice.objects.filter(user=user, confirmed=False, pk=request.POST.get("device") or 0).first()
        if device is not None and form.is_valid():
            codes = second_factor_confirm(user=user, device=device, token=form.cleaned_data["code"], actor=actor)
            if codes is not None:
                device.refresh_from_db()
                otp_login(request, device)
                return render(request, "backoffice/recovery_codes.html", {"codes": codes, "next": _next(request)})
            form.add_error("code", _("This code is not valid. Check the time on your phone and try again."))
    elif request.method == "POST" and action == "regenerate" and enabled:
        codes = recovery_codes_regenerate(user=user, actor=actor)
        return render(request, "backoffice/recovery_codes.html", {"codes": codes, "next": "/bo/security/"})
    elif request.method == "POST" and action == "disable" and enabled:
        try:
            second_factor_disable(user=user, actor=actor)
        except ConflictError:
            messages.error(request, _("Two-factor authentication is mandatory for your account."))
        else:
            messages.success(request, _("Two-factor authentication is off."))
        return redirect("backoffice:security")
    if not enabled:
        context |= _enrolment_context(_pending_device(user))
    else:
        context["codes_left"] = sum(d.token_set.count() for d in StaticDevice.objects.filter(user=user))
    context["form"] = form
    return render(request, "backoffice/security.html", context)


class CreditorSecurityForm(forms.Form):
    creditor = forms.ModelChoiceField(queryset=Creditor.objects.none(), label=gettext_lazy("Creditor"))
    require_2fa = forms.BooleanField(
        required=False, label=gettext_lazy("Require two-factor authentication for every user of this creditor")
    )

    def __init__(self, *args: object, creditors: QuerySet[Creditor], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["creditor"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101
        field.queryset = creditors
        if creditors.count() == 1:
            field.initial = creditors.get().pk
            field.widget = forms.HiddenInput()


@requires("creditor.security")
@require_http_methods(["GET", "POST"])
def creditor_security(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    creditors = creditors_managed_by(actor)
    form = CreditorSecurityForm(request.POST or None, creditors=creditors)
    if request.method == "POST" and form.is_valid():
        creditor = creditor_require_2fa_set(
            creditor=form.cleaned_data["creditor"], required=form.cleaned_data["require_2fa"], actor=actor
        )
        messages.success(
            request,
            _("Two-factor authentication is now required for %(creditor)s.") % {"creditor": creditor.display_name}
            if creditor.require_2fa
            else _("Two-factor authentication is now optional for %(creditor)s.") % {"creditor": creditor.display_name},
        )
        return redirect("backoffice:creditor_security")
    users = User.objects.filter(creditor__in=creditors).select_related("creditor").order_by("creditor", "username")
    rows = [(u, TOTPDevice.objects.filter(user=u, confirmed=True).exists()) for u in users]
    return render(request, "backoffice/creditor_security.html", {"form": form, "creditors": creditors, "users": rows})
