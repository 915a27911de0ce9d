from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "relance.compliance"
    label = "compliance"
    default_auto_field = "django.db.models.BigAutoField"
