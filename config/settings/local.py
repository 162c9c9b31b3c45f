"""Local development and the demo (`make run`)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
DEMO_MODE = env.bool("DEMO_MODE", default=True)
# A development-only key; production refuses to start without SECRET_KEY in the environment.
SECRET_KEY = env("SECRET_KEY", default="local-development-only-key-not-for-production-use-0123456789")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# The one password of the demo users seed_demo creates (demo mode only; printed by `make run`).
DEMO_PASSWORD = env("DEMO_PASSWORD", default="throughline-demo")
