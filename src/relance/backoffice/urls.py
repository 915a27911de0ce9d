from django.contrib.auth import views as auth_views
from django.urls import path

from relance.backoffice import imports, strategies, views

app_name = "backoffice"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="backoffice/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("evidence/<int:evidence_id>/", views.evidence_download, name="evidence"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:action_id>/", views.message_detail, name="message"),
    path("debtors/review/", views.debtor_reviews, name="debtor_reviews"),
    path("imports/", imports.imports, name="imports"),
    path("imports/<int:import_id>/", imports.import_detail, name="import"),
    path("imports/<int:import_id>/errors.csv", imports.import_errors, name="import_errors"),
    path("strategies/", strategies.strategy_list, name="strategies"),
    path("strategies/new/", strategies.strategy_edit, name="strategy_new"),
    path("strategies/<slug:key>/", strategies.strategy_edit, name="strategy"),
    path("templates/", strategies.template_list, name="templates"),
    path("templates/<int:template_id>/delete/", strategies.template_delete, name="template_delete"),
]
