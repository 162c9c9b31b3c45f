"""Settings of ``bench_issue.py`` and of the queue cluster it starts: the test settings (the database from
``DATABASE_URL``) with the queue of production (``config/settings/base.py``: the ORM broker unless
``Q_BROKER_URL`` names Redis, asynchronous) and ``BENCH_WORKERS`` workers, and the PDFs stored as files
under ``BENCH_MEDIA_ROOT`` as the filesystem storage of production stores them."""

import tempfile

from config.settings import base
from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES, Q_CLUSTER, STORAGES, env

# The tests' cluster name (it keys the broker's rows and salts the signed tasks): the smoke test's process,
# on the test settings, enqueues for a cluster started with these.
Q_CLUSTER = {**base.Q_CLUSTER, "name": Q_CLUSTER["name"], "workers": env.int("BENCH_WORKERS", default=2)}
MEDIA_ROOT = env("BENCH_MEDIA_ROOT", default=tempfile.gettempdir())
STORAGES = {
    **STORAGES,
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
}

# Seconds a worker keeps its database connection between tasks (Django's CONN_MAX_AGE; production's settings
# leave the default, 0: a new connection, with cold catalogue caches in its server process, for every task).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("BENCH_CONN_MAX_AGE", default=0)
