"""The Celery application.

Settings live in Django settings under the ``CELERY_`` namespace; the broker URL
comes from the environment, so Redis, RabbitMQ (``amqp://``) or the demo's
filesystem transport are chosen by URL alone.
"""

import os

from celery import Celery

from apps.core.watchdog import Watchdog

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("smartcollection")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# a worker that stops taking tasks after a broker outage ends itself (apps/core/watchdog.py)
app.steps["consumer"].add(Watchdog)
