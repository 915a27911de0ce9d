from django.urls import path

from relance.portal import views

app_name = "portal"
urlpatterns = [
    path("<str:token>/", views.entry, name="entry"),
    path("<str:token>/dossier/", views.case_page, name="case"),
    path("<str:token>/pay/sandbox/", views.pay_sandbox, name="pay_sandbox"),
]
