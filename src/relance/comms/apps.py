from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "relance.comms"
    label = "comms"
    default_auto_field = "django.db.models.BigAutoField"
