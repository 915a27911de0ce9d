from django.urls import path

from relance.portal import views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.entry, name="entry"),
    path("<str:token>/dossier/", views.case_page, name="case"),
    path("<str:token>/pay/sandbox/", views.pay_sandbox, name="pay_sandbox"),
    path("<str:token>/documents/<int:evidence_id>/", views.evidence_download, name="evidence"),
]
