"""The Celery application.

Settings live in Django settings under the ``CELERY_`` namespace; the broker URL
comes from the environment, so Redis, RabbitMQ (``amqp://``) or the demo's
filesystem transport are chosen by URL alone.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("smartcollection")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
