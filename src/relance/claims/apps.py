from django.apps import AppConfig


class ClaimsConfig(AppConfig):
    name = "relance.claims"
    label = "claims"
    default_auto_field = "django.db.models.BigAutoField"
