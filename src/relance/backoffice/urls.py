from django.contrib.auth import views as auth_views
from django.urls import path

from relance.backoffice import dashboards, imports, remittances, views, work

app_name = "backoffice"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="backoffice/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("cases/<int:case_id>/act/<slug:verb>/", work.case_act, name="case_act"),
    path("cases/<int:case_id>/recall/", work.case_recall_view, name="case_recall"),
    path("queues/", work.queues, name="queues"),
    path("queues/<slug:kind>/", work.queue, name="queue"),
    path("queues/<slug:kind>/next/", work.queue_next, name="queue_next"),
    path("work/<int:item_id>/", work.work_item, name="work_item"),
    path("work/<int:item_id>/<slug:verb>/", work.work_item_act, name="work_item_act"),
    path("evidence/<int:evidence_id>/", views.evidence_download, name="evidence"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:action_id>/", views.message_detail, name="message"),
    path("debtors/review/", views.debtor_reviews, name="debtor_reviews"),
    path("dashboard/", dashboards.dashboard, name="dashboard"),
    path("dashboard/<slug:name>.svg", dashboards.dashboard_chart, name="dashboard_chart"),
    path("dashboard/<slug:name>.<str:fmt>", dashboards.dashboard_export, name="dashboard_export"),
    path("imports/", imports.imports, name="imports"),
    path("imports/<int:import_id>/", imports.import_detail, name="import"),
    path("imports/<int:import_id>/errors.csv", imports.import_errors, name="import_errors"),
    path("remittances/", remittances.remittances, name="remittances"),
    path(
        "remittances/<int:remittance_id>/statement.pdf", remittances.remittance_statement, name="remittance_statement"
    ),
    path("remittances/<int:remittance_id>/invoice.pdf", remittances.remittance_invoice, name="remittance_invoice"),
    path("remittances/files/<int:batch_id>.xml", remittances.payout_file, name="payout_file"),
    path("remittances/files/<int:batch_id>/paid", remittances.payout_file_paid, name="payout_file_paid"),
]
