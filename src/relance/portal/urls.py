from django.urls import path

from relance.portal import arrangements, views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.entry, name="entry"),
    path("<str:token>/dossier/", views.case_page, name="case"),
    path("<str:token>/pay/sandbox/", views.pay_sandbox, name="pay_sandbox"),
    path("<str:token>/documents/<int:evidence_id>/", views.evidence_download, name="evidence"),
    path("<str:token>/plan/", arrangements.plan, name="plan"),
    path("<str:token>/plan/confirm/", arrangements.plan_confirm, name="plan_confirm"),
    path("<str:token>/plan/done/", arrangements.plan_done, name="plan_done"),
    path("<str:token>/promise/", arrangements.promise, name="promise"),
    path("<str:token>/hardship/", arrangements.hardship, name="hardship"),
]
