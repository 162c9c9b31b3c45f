"""Settings for the test suite: PostgreSQL when DATABASE_URL points at it, SQLite otherwise."""

from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False
DEMO_MODE = False
SECRET_KEY = "test-only-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
Q_CLUSTER = {
    "name": "throughline-test",
    "orm": "default",
    "sync": env.bool("Q_SYNC", default=True),
    "timeout": 60,
    "retry": 120,
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": ""}
