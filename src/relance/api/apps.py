from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "relance.api"
    label = "api"
    default_auto_field = "django.db.models.BigAutoField"
