"""Two-factor authentication in front of every back-office page (issue 6).

After the password step (``LoginView``, throttled by django-axes) the user is logged in but not
*verified*. Under ``/bo/`` such a user reaches only the login steps: the code page when they have an
authenticator (``second_factor_step``), the enrolment page when they must have one and have none
(``second_factor_enrolment``). Staff always need a second factor; creditor users when they set one up
or their creditor admin requires it. Runs after django-otp's ``OTPMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_otp import user_has_device

from relance.tenancy.models import User
from relance.tenancy.services import second_factor_required

PREFIX = "/bo/"


def second_factor_step(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view an authenticated but unverified user may open (login, code step, logout)."""
    view.second_factor_step = True  # type: ignore[attr-defined]
    return view


def second_factor_enrolment(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view an unverified user may open only while they have no authenticator (first set-up)."""
    view.second_factor_enrolment = True  # type: ignore[attr-defined]
    return view


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: object, kwargs: object
    ) -> HttpResponse | None:
        user = request.user
        if not request.path.startswith(PREFIX) or not isinstance(user, User) or not user.is_authenticated:
            return None
        if user.is_verified() or _flag(view, "second_factor_step"):  # type: ignore[attr-defined]
            return None
        has_device = user_has_device(user)
        if has_device:
            return redirect_to_login(request.get_full_path(), reverse("backoffice:login_verify"))
        if not second_factor_required(user=user):
            return None
        if _flag(view, "second_factor_enrolment"):
            return None
        return redirect_to_login(request.get_full_path(), reverse("backoffice:security"))


def _flag(view: Callable[..., Any], name: str) -> bool:
    return bool(getattr(view, name, False) or getattr(getattr(view, "view_class", None), name, False))
