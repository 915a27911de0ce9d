"""The page-side choke point: ``@requires("permission")`` on every back-office view.

One decorator does what ``login_required`` did, plus the role check of ``tenancy.permissions``:
anonymous users go to the login page, a role outside the matrix gets 403, and the view finds the
actor on ``request.actor``. It marks the view with its permission so that the generic matrix test
finds and checks it (a view without a declaration fails that test). Pages anyone may open (login,
second-factor step) are marked ``@public`` instead.

Second-factor enforcement is not here but in ``backoffice.middleware.SecondFactorMiddleware``: it
runs before every back-office view, whichever decorator it has.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from relance.tenancy.actors import Actor
from relance.tenancy.models import User
from relance.tenancy.permissions import allowed, roles_for

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def actor_of(request: HttpRequest) -> Actor:
    """The logged-in user as an ``Actor`` (403 for anyone else)."""
    actor = getattr(request, "actor", None)
    if isinstance(actor, Actor):
        return actor
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied
    return Actor.for_user(user)


def requires(permission: str) -> Callable[[View], View]:
    """Log-in and role check for a view; ``permission`` is a key of ``permissions.MATRIX``."""
    roles_for(permission)  # an unknown permission fails at import time, not at request time

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not isinstance(user, User):
                raise PermissionDenied
            actor = Actor.for_user(user)
            if not allowed(actor, permission):
                raise PermissionDenied
            request.actor = actor  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        wrapped.relance_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def public(view: View) -> View:
    """Mark a view that needs no permission (login steps); the matrix test skips it."""
    view.relance_permission = None  # type: ignore[attr-defined]
    return view


def permission_of(view: Callable[..., Any]) -> str | None:
    """The permission a view declared; ``AttributeError`` when it declared none."""
    declared = getattr(view, "relance_permission", AttributeError)
    if declared is AttributeError and hasattr(view, "view_class"):  # class-based view
        declared = getattr(view.view_class, "relance_permission", AttributeError)
    if declared is AttributeError:
        raise AttributeError(f"{view!r} declares no permission: decorate it with @requires(...) or @public")
    assert declared is None or isinstance(declared, str)  # noqa: S101
    return declared


def permissions_context(request: HttpRequest) -> dict[str, Any]:
    """Template context ``can``: ``{{ can.api_keys_manage }}`` for ``api_keys.manage`` (menus follow the matrix)."""
    from relance.tenancy.permissions import MATRIX  # noqa: PLC0415 - keep the module's imports minimal

    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"can": {}}
    actor = Actor.for_user(user)
    return {"can": {name.replace(".", "_"): allowed(actor, name) for name in MATRIX}}
