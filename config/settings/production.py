"""Production: every secret and address comes from the environment."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The real agent's signing-certificate checksum: no default in production.
AGENT_SIGNATURE_CHECKSUM = env("AGENT_SIGNATURE_CHECKSUM")
# Production names its SMS provider's client and the agent's address explicitly:
# the demo's console gateway would print consent codes into the logs.
SMS_GATEWAY_CLASS = env("SMS_GATEWAY_CLASS")
AGENT_API_BASE_URL = env("AGENT_API_BASE_URL")
# Pushes go through FCM: without credentials the demo's logging gateway would
# report every push sent and no phone would hear it.
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE")
# Throttles must count across worker processes: a shared Redis, no default.
CACHE_URL = env("CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
}
# The demo payment provider would let anyone mark a loan paid: never in production.
PAYMENTS_FAKE_CHECKOUT = False
