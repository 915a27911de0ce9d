"""The portal's language switch: plain links (``GET /p/lang/<code>/?next=<portal path>``), no form.

Each portal page links every language of ``settings.LANGUAGES``; the link sets Django's language cookie
(the one ``LocaleMiddleware`` reads, with its settings) and sends the debtor back to the page they were
on. A page whose only form was the language menu then needs no CSRF token (Django draws and signs one
on every such page). Changing the language is not a state change worth a CSRF check: a third-party link
can at worst show a debtor the portal in the other language, which the page itself offers.
``next`` must be a path of the portal on this site (``url_has_allowed_host_and_scheme``): no open
redirect. The back office keeps Django's own ``set_language`` form.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from relance.portal.links import portal_prefix


@require_safe
def language(request: HttpRequest, code: str) -> HttpResponse:
    if code not in dict(settings.LANGUAGES):
        raise Http404("no such language")
    target = request.GET.get("next", "")
    same_site = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not (same_site and target.startswith(portal_prefix())):
        return HttpResponseBadRequest(
            _("This link does not lead back to a page of the portal."), content_type="text/plain"
        )
    response = HttpResponseRedirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    add_never_cache_headers(response)
    return response
