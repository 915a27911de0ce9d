"""Webhook pages, mounted under /bo/webhooks/ (the API itself is ``api.api``)."""

from django.urls import path

from relance.api import views

app_name = "webhooks"
urlpatterns = [
    path("", views.webhooks, name="list"),
    path("new/", views.endpoint_create, name="create"),
    path("<int:endpoint_id>/active/", views.endpoint_active, name="active"),
    path("deliveries/", views.deliveries, name="deliveries"),
    path("deliveries/<int:delivery_id>/", views.delivery_detail, name="delivery"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay, name="replay"),
]
