from django.apps import AppConfig


class BackboneConfig(AppConfig):
    name = "backbone"
    verbose_name = "Backbone"

    def ready(self) -> None:
        from . import demo, history  # noqa: F401  (audit-chain receiver; the demo users seeder)
