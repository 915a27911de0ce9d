from collections.abc import Callable

from django.http.response import HttpResponseBase
from django.urls import path

from relance.portal import arrangements, disputes, language, pay, profile, views
from relance.portal.access import verified_cookie

app_name = "portal"
# Every page of a case passes through ``verified_cookie``: the debtor's verification is a signed cookie
# (relance.portal.access) that a page re-issues when it is a minute old.
_case_pages: list[tuple[str, Callable[..., HttpResponseBase], str]] = [
    ("<str:token>/", views.entry, "entry"),
    ("<str:token>/dossier/", views.case_page, "case"),
    ("<str:token>/dossier/transfer-qr.svg", views.transfer_qr, "transfer_qr"),
    ("<str:token>/pay/sandbox/", views.pay_sandbox, "pay_sandbox"),
    ("<str:token>/documents/<int:evidence_id>/", views.evidence_download, "evidence"),
    ("<str:token>/pay/card/", pay.card_pay, "card_pay"),
    ("<str:token>/pay/card/<int:checkout_id>/", pay.card_go, "card_go"),
    ("<str:token>/pay/return/", pay.card_return, "card_return"),
    ("<str:token>/receipts/<int:receipt_id>/", pay.receipt_download, "receipt"),
    ("<str:token>/dispute/", disputes.dispute, "dispute"),
    ("<str:token>/dispute/files/<int:file_id>/", disputes.dispute_file, "dispute_file"),
    ("<str:token>/return/", disputes.goods_return, "return"),
    ("<str:token>/contact/", profile.contact, "contact"),
    ("<str:token>/plan/", arrangements.plan, "plan"),
    ("<str:token>/plan/confirm/", arrangements.plan_confirm, "plan_confirm"),
    ("<str:token>/plan/done/", arrangements.plan_done, "plan_done"),
    ("<str:token>/promise/", arrangements.promise, "promise"),
    ("<str:token>/hardship/", arrangements.hardship, "hardship"),
]
urlpatterns = [
    path("lang/<str:code>/", language.language, name="language"),  # before "<token>/": "lang" is no token
    *(path(route, verified_cookie(view), name=name) for route, view, name in _case_pages),
]
