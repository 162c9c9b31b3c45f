from django.apps import AppConfig


class BackboneConfig(AppConfig):
    name = "backbone"
    verbose_name = "Backbone"

    def ready(self) -> None:
        from . import history  # noqa: F401  (connects the audit-chain receiver)
