from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_default_strategy(sender: AppConfig, **kwargs: object) -> None:
    from relance.strategies.models import Strategy  # noqa: PLC0415 - apps not ready at import
    from relance.strategies.services import strategy_install_default  # noqa: PLC0415
    from relance.tenancy.actors import Actor  # noqa: PLC0415

    using = kwargs.get("using", "default")
    if not Strategy.objects.using(str(using)).filter(is_default=True).exists():
        strategy_install_default(actor=Actor.system("migrate"))


class StrategiesConfig(AppConfig):
    name = "relance.strategies"
    label = "strategies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_install_default_strategy, sender=self)
