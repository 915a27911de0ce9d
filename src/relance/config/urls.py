from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from relance.api.api import api


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="backoffice:home", permanent=False)),
    path("healthz", healthz),
    path("api/v1/", api.urls),
    path("bo/webhooks/", include("relance.api.urls")),
    path("bo/", include("relance.backoffice.urls")),
    path("p/", include("relance.portal.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("hooks/", include("relance.comms.webhook_urls")),
    path("hooks/psp/", include("relance.payments.webhook_urls")),
]
