from django.urls import path

from relance.portal import arrangements, disputes, pay, profile, views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.entry, name="entry"),
    path("<str:token>/dossier/", views.case_page, name="case"),
    path("<str:token>/dossier/transfer-qr.svg", views.transfer_qr, name="transfer_qr"),
    path("<str:token>/pay/sandbox/", views.pay_sandbox, name="pay_sandbox"),
    path("<str:token>/documents/<int:evidence_id>/", views.evidence_download, name="evidence"),
    path("<str:token>/pay/card/", pay.card_pay, name="card_pay"),
    path("<str:token>/pay/card/<int:checkout_id>/", pay.card_go, name="card_go"),
    path("<str:token>/pay/return/", pay.card_return, name="card_return"),
    path("<str:token>/receipts/<int:receipt_id>/", pay.receipt_download, name="receipt"),
    path("<str:token>/dispute/", disputes.dispute, name="dispute"),
    path("<str:token>/dispute/files/<int:file_id>/", disputes.dispute_file, name="dispute_file"),
    path("<str:token>/return/", disputes.goods_return, name="return"),
    path("<str:token>/contact/", profile.contact, name="contact"),
    path("<str:token>/plan/", arrangements.plan, name="plan"),
    path("<str:token>/plan/confirm/", arrangements.plan_confirm, name="plan_confirm"),
    path("<str:token>/plan/done/", arrangements.plan_done, name="plan_done"),
    path("<str:token>/promise/", arrangements.promise, name="promise"),
    path("<str:token>/hardship/", arrangements.hardship, name="hardship"),
]
