"""Queue tasks of the shared kernel (django-q2). Each takes IDs, re-fetches, and is safe to run twice."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import Notification


def notification_email_send(notification_id: int) -> bool:
    """Mail one notification to its person, once. Returns whether a mail went out."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.emailed_at is not None or not notification.user.email:
            return False
        link = f"\n\n{settings.SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
        send_mail(
            subject=notification.title,
            message=f"{notification.body}{link}",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[notification.user.email],
        )
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True
