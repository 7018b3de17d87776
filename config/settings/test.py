"""Settings for pytest: real PostgreSQL and Redis, fakes only at the edges."""

import os

os.environ.setdefault("PAYMENTS_WEBHOOK_MASTER_KEY", "test-only-webhook-key")
# a Fernet key for the credentials of payment providers, not secret here
os.environ.setdefault("PAYMENTS_CREDENTIALS_KEYS", "Yhuy4piJEgzGdKLupjMpF-B5up3PJTVoRrLNFKqa-vU=")
os.environ.setdefault("PAYMENTS_FAKE_CHECKOUT", "true")
# the loopback fakes of the providers call back from here
os.environ.setdefault("MPESA_CALLBACK_ALLOWED_IPS", "127.0.0.1,::1")
os.environ.setdefault("DEVICE_SIGNING_MASTER_KEY", "test-only-signing-key")
os.environ.setdefault("AGENT_SIGNATURE_CHECKSUM", "51ZbhGPJkVG6H3YsWCnp0hdeXId7vGjmBdzZGlxPSJA")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-a-secret")
os.environ.setdefault(
    "DATABASE_URL", "postgres://smartcollection:smartcollection@127.0.0.1:5432/smartcollection"
)
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# the receivers of the webhooks' tests are loopback servers
os.environ.setdefault("WEBHOOK_ALLOW_HTTP", "true")

from config.settings.base import *  # noqa: F403
from config.settings.base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Unit tests run tasks eagerly; the reliability tests and drills start real workers on Redis.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
# Serve static files from the apps' folders, with no collectstatic step.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Transactional tests are isolated by flushing, which empties the audit table too.
AUDIT_ALLOW_FLUSH = True
SMS_GATEWAY_CLASS = "tests.fakes.sms.FakeSmsGateway"
DEMO_SEED_ALLOWED = True
# Push retries in tests wait milliseconds, not seconds.
PUSH_RETRY_BASE_SECONDS = 0.01
PUSH_RETRY_MAX_SECONDS = 0.05
