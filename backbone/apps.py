from django.apps import AppConfig


class BackboneConfig(AppConfig):
    name = "backbone"
    verbose_name = "Backbone"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import update_last_login
        from django.contrib.auth.signals import user_logged_in
        from django.utils import timezone

        from . import demo, history  # noqa: F401  (audit-chain receiver; the demo users seeder)

        # Signing in is not a change of the user record: store last_login without a history entry, so the
        # audit trail is not flooded with empty "changed user" rows.
        def record_last_login(sender, user, **kwargs):
            now = timezone.now()
            get_user_model().objects.filter(pk=user.pk).update(last_login=now)
            user.last_login = now

        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
        user_logged_in.connect(record_last_login, dispatch_uid="throughline_record_last_login")
