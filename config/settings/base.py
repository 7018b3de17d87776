"""Settings shared by every environment.

``local``, ``test`` and ``production`` star-import this module and override only
what differs. Every value that changes between deployments is read through
``config.env``.
"""

from datetime import timedelta

from csp.constants import NONE, SELF
from kombu import Queue

from config.env import BASE_DIR, env

# --- Core -------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")

INSTALLED_APPS = [
    "apps.core.admin_config.SmartCollectionAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files from our own origin, so /api/docs/ lives under script-src 'self'.
    "drf_spectacular_sidecar",
    "csp",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "pgtrigger",
    "apps.core",
    "apps.accounts",
    "apps.lenders",
    "apps.audit",
    "apps.customers",
    "apps.retailers",
    "apps.collections",
    "apps.devices",
    "apps.notifications",
    "apps.integrations",
    "apps.demo",  # the demo's commands (seed_demo, provider_webhook)
    "apps.selfservice",
    "apps.front",
    "apps.counter",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so the static files (an SVG can carry script) get the policies too.
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # An API body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 before any view reads it.
    "apps.core.api.middleware.ApiBodySizeMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Services own their transaction boundaries; a request-wide transaction would
# hold row locks across template rendering (STYLE.md section 16).
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # django-axes must come first so a locked-out account never reaches the
    # password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = f"/{ADMIN_URL}login/"
# Where a login lands when its next= is missing or points off the site (Django drops an
# unsafe one): the back office's index, not Django's /accounts/profile/ (a 404 here).
# The counter's login has its own landing page. tests/accounts/test_admin_login_next.py
LOGIN_REDIRECT_URL = f"/{ADMIN_URL}"

# Behind a reverse proxy, the client address is the Nth address from the right
# of X-Forwarded-For; 0 means no proxy (REMOTE_ADDR). Used by axes, the audit and the API
# throttles (apps.core.actor.client_ip).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

# django-axes: five failed logins lock the account (by username, so an attacker
# rotating addresses cannot keep guessing) and, separately, the address they
# came from (so one address cannot walk through many usernames). Failures
# expire after the cool-off; a success does not reset them, since axes would
# also forget failures against other accounts from the same address.
AXES_FAILURE_LIMIT = env.int("DJANGO_AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("DJANGO_AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "apps.core.actor.client_ip"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
# The client address is not personal data we want in axes' own logs.
AXES_VERBOSE = False

# django-otp
OTP_TOTP_ISSUER = env("DJANGO_OTP_ISSUER", default="Smart Collection")
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# --- Sessions and security headers ------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "apps.front.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# django-csp. No page has inline script or style (attributes included): behaviour lives in
# static/ and each app's static/, and data for it in data-* attributes. Swagger UI comes from
# drf-spectacular-sidecar with its init script served apart, so /api/docs/ needs no exception.
# img-src data: is for the icons Swagger UI's stylesheet inlines; the QR codes are inline SVG
# and their PNG a download link, neither of which img-src governs.
# form-action: the customer's Pay posts here and is redirected to the provider's checkout,
# which Chromium checks against form-action: Stripe Checkout's origin, or the lender's own
# domain for it (PAYMENTS_CHECKOUT_ORIGINS); the demo checkout is on our origin, and the
# demo's loopback Stripe is added in local settings.
# tests/drills/test_headers_drill.py walks every page for these headers and drives the main
# pages in Chromium counting violations.
PAYMENTS_CHECKOUT_ORIGINS = env.list(
    "PAYMENTS_CHECKOUT_ORIGINS", default=["https://checkout.stripe.com"]
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *PAYMENTS_CHECKOUT_ORIGINS],
    },
}
# No page uses the camera (the counter shows its QR code, the phone scans it), the
# microphone or the position.
PERMISSIONS_POLICY = {"camera": [], "microphone": [], "geolocation": []}

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Day-month-year in English too (config/formats/en): Kenya's pages, not the United States'
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- REST framework and the OpenAPI schema ----------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.AutoSchema",
    # JSON only, nested too deeply a 400: DRF's form and multipart parsers silently dropped
    # a nested field (an agent event's detail) and put both in the schema; now they are a 415
    "DEFAULT_PARSER_CLASSES": ["apps.core.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    # A back-office session counts only after the second factor.
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.IsVerified"],
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min", "user": "600/min"},
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Smart Collection API",
    "DESCRIPTION": "Agent, payment and back-office APIs of Smart Collection.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar (our origin), not a CDN: see CONTENT_SECURITY_POLICY.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would send the schema's address to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # two choice sets named "kind" (an agent's event, a payment's reversal): each its own name
    "ENUM_NAME_OVERRIDES": {
        "PaymentReversalKindEnum": "apps.collections.models.PaymentReversal.Kind",
        "PublicEventTypeEnum": "apps.audit.public.PUBLIC_TYPES",
        "WebhookDeliveryStatusEnum": "apps.integrations.models.WebhookDelivery.Status",
    },
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it ran, so a worker killed mid-task has it
# redelivered; every task is therefore idempotent (STYLE.md section 13).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues by kind, so a flood of one kind cannot starve another. A worker started
# without -Q consumes them all; production runs one worker pool per kind.
TASK_QUEUE_NAMES = ("sweep", "push", "notify", "webhooks", "default")
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in TASK_QUEUE_NAMES)
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = ("apps.core.tasks.route_task",)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
# Redis hands a task taken by a worker that died (acks_late) to another worker after this
# many seconds: longer than any task may run, so a slow task is never run twice at once.
# A send finding the broker down gives up after one more try instead of retrying for
# seconds: the request that committed answers at once, and the task outbox and the push
# outbox send later (workers' own consumers reconnect on their own terms).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int(
        "CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 300
    ),
    "max_retries": 1,
    "interval_start": 0,
    # an unreachable host (packets dropped, not refused) gives up in seconds, not minutes
    "socket_connect_timeout": 2,
}

# A worker with tasks waiting in its queues that takes none at two checks this many seconds
# apart stops, for its supervisor to start a fresh one (apps/core/watchdog.py); 0: never.
WORKER_WATCHDOG_SECONDS = env.int("WORKER_WATCHDOG_SECONDS", default=60)

# A task kept in the outbox is left to its own send after commit for this long, counted
# from when the row was written (not from the commit), before the minutely relay sends
# it: a transaction longer than this can see its task sent twice, which every task
# tolerates (each is idempotent, STYLE.md 13).
TASK_OUTBOX_GRACE_SECONDS = env.int("TASK_OUTBOX_GRACE_SECONDS", default=30)

# --- Logging ----------------------------------------------------------------
# Logs carry ids, never names, phone numbers or national ids.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"path_secrets": {"()": "apps.core.logs.PathSecretsRedacted"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # they log the path of a refused request, and a callback's path carries a secret
        "django.request": {"filters": ["path_secrets"]},
        "django.server": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
            "filters": ["path_secrets"],
        },
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # fpdf2 subsets the evidence PDF's fonts and fontTools narrates each glyph at INFO
        "fontTools": {"level": "WARNING"},
        # Stripe's client narrates each call at INFO, and its bodies (a customer's email) at DEBUG
        "stripe": {"level": "WARNING"},
        # Twilio's client narrates each call (its URL and headers) in a dozen lines at INFO
        "twilio": {"level": "WARNING"},
    },
}

# --- Audit ------------------------------------------------------------------
# `manage.py flush` would erase the audit trail; only the test runner may.
AUDIT_ALLOW_FLUSH = False

# --- Payment provider webhooks ------------------------------------------------
# Per-lender secrets are derived from this master key (apps/integrations/payments).
PAYMENTS_WEBHOOK_MASTER_KEY = env("PAYMENTS_WEBHOOK_MASTER_KEY")
PAYMENTS_PROVIDERS = env.list("PAYMENTS_PROVIDERS", default=["demo"])
# Providers' credentials are sealed at rest with these Fernet keys, newest first
# (apps/integrations/payments/credentials.py); rotate by adding a key in front.
PAYMENTS_CREDENTIALS_KEYS = env.list("PAYMENTS_CREDENTIALS_KEYS")
# Daraja's address; empty: by each M-Pesa account's environment (sandbox or production). The
# tests and the demo point it at a loopback fake of the API.
MPESA_API_BASE = env("MPESA_API_BASE", default="")
# Daraja signs no callback: one is taken only from these addresses (Safaricom's published
# callback sources), on a path with the lender's secret token, and is checked against the
# payment we started. The tests and the demo allow the loopback address.
MPESA_CALLBACK_ALLOWED_IPS = env.list(
    "MPESA_CALLBACK_ALLOWED_IPS",
    default=[
        "196.201.214.200",
        "196.201.214.206",
        "196.201.213.114",
        "196.201.214.207",
        "196.201.214.208",
        "196.201.213.44",
        "196.201.212.127",
        "196.201.212.138",
        "196.201.212.129",
        "196.201.212.136",
        "196.201.212.74",
        "196.201.212.69",
    ],
)
# The public address providers call back (an STK push carries it); the demo's by default.
PAYMENTS_CALLBACK_BASE_URL = env("PAYMENTS_CALLBACK_BASE_URL", default="")
# A payment started through us with no callback after this many minutes is asked about
# (M-Pesa's prompt lives about a minute; a checkout page longer), and given up after
# PAYMENTS_ATTEMPT_EXPIRE_MINUTES with the provider still saying nothing.
PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES = env.int("PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES", default=3)
PAYMENTS_ATTEMPT_EXPIRE_MINUTES = env.int("PAYMENTS_ATTEMPT_EXPIRE_MINUTES", default=30)
# Stripe's API address; empty: Stripe's own (https://api.stripe.com). The tests and the demo
# point it at a loopback fake of the API (tools/fakes/stripe.py).
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Plaid's API address; empty: the Plaid account's environment's (sandbox or production). The
# tests point it at a loopback fake of the API (tools/fakes/plaid.py).
PLAID_API_BASE = env("PLAID_API_BASE", default="")
# The WhatsApp Cloud API's address (Meta's Graph API). The tests and the demo point it at a
# loopback fake of the API (tools/fakes/whatsapp.py).
WHATSAPP_API_BASE = env("WHATSAPP_API_BASE", default="https://graph.facebook.com")
# the demo provider's checkout page (apps/integrations/payments/checkout.py): demo and tests only
PAYMENTS_FAKE_CHECKOUT = env.bool("PAYMENTS_FAKE_CHECKOUT", default=False)
PAYMENTS_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENTS_WEBHOOK_TOLERANCE_SECONDS", default=300)
PAYMENTS_WEBHOOK_MAX_BYTES = env.int("PAYMENTS_WEBHOOK_MAX_BYTES", default=64 * 1024)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["webhooks"] = env(
    "PAYMENTS_WEBHOOK_THROTTLE", default="6000/min"
)

# --- Devices: the agent, its provisioning QR and enrollment ---------------------
# Each lender's Ed25519 key is derived from this master key (apps/devices/keys.py).
DEVICE_SIGNING_MASTER_KEY = env("DEVICE_SIGNING_MASTER_KEY")
AGENT_PACKAGE_NAME = env("AGENT_PACKAGE_NAME", default="com.smartcollection.agent")
AGENT_ADMIN_COMPONENT = env("AGENT_ADMIN_COMPONENT", default=f"{AGENT_PACKAGE_NAME}/.AdminReceiver")
AGENT_DOWNLOAD_URL = env(
    "AGENT_DOWNLOAD_URL", default="https://example.invalid/agent/smartcollection-agent.apk"
)
# URL-safe base64 (no padding) of the SHA-256 of the agent's signing certificate.
AGENT_SIGNATURE_CHECKSUM = env("AGENT_SIGNATURE_CHECKSUM", default="")
# `make run` serves the demo on DEMO_HOST:DEMO_PORT (tools/run_demo.py): the demo's printed
# links, provider_webhook's default target and, unless AGENT_API_BASE_URL is set, the agent
# address in the QR codes (so the simulated phones call the port the demo serves on).
DEMO_HOST = env("DEMO_HOST", default="127.0.0.1")
DEMO_PORT = env.int("DEMO_PORT", default=8000)
DEMO_BASE_URL = f"http://{f'[{DEMO_HOST}]' if ':' in DEMO_HOST else DEMO_HOST}:{DEMO_PORT}"
AGENT_API_BASE_URL = env("AGENT_API_BASE_URL", default=f"{DEMO_BASE_URL}/api/agent/v1/")
ENROLLMENT_TOKEN_TTL_HOURS = env.int("ENROLLMENT_TOKEN_TTL_HOURS", default=24)
PROVISIONING_WIFI_SSID = env("PROVISIONING_WIFI_SSID", default="")
PROVISIONING_WIFI_PASSWORD = env("PROVISIONING_WIFI_PASSWORD", default="")
PROVISIONING_WIFI_SECURITY_TYPE = env("PROVISIONING_WIFI_SECURITY_TYPE", default="WPA")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["enroll"] = env("AGENT_ENROLL_THROTTLE", default="30/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["agent"] = env("AGENT_API_THROTTLE", default="120/min")
# --- The lender API (/api/lender/v1/): calls per API key ------------------------------------
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["lender_api"] = env(
    "LENDER_API_THROTTLE", default="1200/min"
)
# Offline unlock (apps/devices/offline.py): a payment's unlock code goes out by SMS when the
# phone has not acknowledged its new state this long after, or at once when the phone has
# not been seen for DEVICE_OFFLINE_AFTER_MINUTES.
OFFLINE_CODE_SMS_AFTER_SECONDS = env.int("OFFLINE_CODE_SMS_AFTER_SECONDS", default=120)
DEVICE_OFFLINE_AFTER_MINUTES = env.int("DEVICE_OFFLINE_AFTER_MINUTES", default=30)
# How long a support PIN lifts the restrictions of a phone, and how many PINs an agent may ask
# for in an hour (each is also audited).
SUPPORT_PIN_HOURS = env.int("SUPPORT_PIN_HOURS", default=24)
SUPPORT_PIN_PER_AGENT_HOUR = env.int("SUPPORT_PIN_PER_AGENT_HOUR", default=10)

# --- Restriction engine ---------------------------------------------------------
# The longest promise to pay, hardship pause and legal hold, in days.
PROMISE_MAX_DAYS = env.int("PROMISE_MAX_DAYS", default=14)
HARDSHIP_MAX_DAYS = env.int("HARDSHIP_MAX_DAYS", default=60)
LEGAL_HOLD_MAX_DAYS = env.int("LEGAL_HOLD_MAX_DAYS", default=365)
# The sweep's local hour in each lender's timezone (08:00 is inside every country's
# contact hours in apps/lenders/country_rules.py), and its loans per task.
SWEEP_LOCAL_HOUR = env.int("SWEEP_LOCAL_HOUR", default=8)
# Each lender's late fees are charged just after its business day ends, in its own timezone
# ("HH:MM", local): an installment becomes late at local midnight after its due date and grace.
LATE_FEE_LOCAL_TIME = env("LATE_FEE_LOCAL_TIME", default="00:05")
SWEEP_RANGE_SIZE = env.int("SWEEP_RANGE_SIZE", default=5000)

# --- Notifications ------------------------------------------------------------
# A notice the phone has not acknowledged after this many minutes goes by SMS.
NOTICE_ACK_MINUTES = env.int("NOTICE_ACK_MINUTES", default=30)
# A text (WhatsApp or SMS) its provider has not reported delivered after this many minutes
# falls back to the lender's next channel, once (so does one it reports failed, at once).
TEXT_DELIVERY_MINUTES = env.int("TEXT_DELIVERY_MINUTES", default=60)

# A phone behind its newest state for this long is recorded out of sync (device.out_of_sync).
DEVICE_OUT_OF_SYNC_MINUTES = env.int("DEVICE_OUT_OF_SYNC_MINUTES", default=60)

# --- Outbound webhooks (apps/integrations/services/webhooks.py) ------------------
# A delivery the receiver does not take is retried after 5 s, then 3 times longer each time
# (with jitter), at most 12 h apart, for 72 h; an endpoint failing for 24 h is turned off.
WEBHOOK_RETRY_SECONDS = env.float("WEBHOOK_RETRY_SECONDS", default=5)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=12 * 3600)
WEBHOOK_RETRY_FOR_HOURS = env.int("WEBHOOK_RETRY_FOR_HOURS", default=72)
WEBHOOK_DISABLE_AFTER_HOURS = env.int("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
# After a rotation the previous secret signs too for this long.
WEBHOOK_ROTATION_HOURS = env.int("WEBHOOK_ROTATION_HOURS", default=24)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
# Connections one sender keeps open at once (one loan's events go one after another).
WEBHOOK_SEND_THREADS = env.int("WEBHOOK_SEND_THREADS", default=16)
# Endpoints must be https:// unless this is on (the demo and the tests post to loopback).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)

# --- Cache --------------------------------------------------------------------
# The API throttles count here. Production sets CACHE_URL (redis://...) so every
# worker process shares the counts; without it, each process counts alone.
CACHE_URL = env("CACHE_URL", default="")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Push (FCM) ----------------------------------------------------------------
# A service-account JSON file; without one, nudges are only logged (the demo).
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE", default="")
FCM_API_BASE = env("FCM_API_BASE", default="https://fcm.googleapis.com")
# The gateway used when FCM_CREDENTIALS_FILE is set (the push seam, integrations/push/base.py).
FCM_GATEWAY_CLASS = "apps.integrations.push.fcm.FcmGateway"
PUSH_TTL_SECONDS = env.int("PUSH_TTL_SECONDS", default=24 * 3600)
PUSH_RETRY_BASE_SECONDS = env.float("PUSH_RETRY_BASE_SECONDS", default=5.0)
PUSH_RETRY_MAX_SECONDS = env.float("PUSH_RETRY_MAX_SECONDS", default=900.0)
PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", default=12)
PUSH_CLAIM_TIMEOUT_SECONDS = env.int("PUSH_CLAIM_TIMEOUT_SECONDS", default=120)
# A released state not acked is pushed again after this, doubling up to six hours.
PUSH_RELEASE_RENUDGE_SECONDS = env.int("PUSH_RELEASE_RENUDGE_SECONDS", default=300)

# --- SMS ----------------------------------------------------------------------
SMS_GATEWAY_CLASS = env("SMS_GATEWAY_CLASS", default="apps.integrations.sms.base.ConsoleSmsGateway")
# The SMS providers' API addresses (apps/integrations/messaging); empty: the providers' own
# (Africa's Talking's by the account's username, sandbox or not; https://api.twilio.com).
# The tests and the demo point them at loopback fakes (tools/fakes/africastalking.py, twilio.py).
AFRICASTALKING_API_BASE = env("AFRICASTALKING_API_BASE", default="")
TWILIO_API_BASE = env("TWILIO_API_BASE", default="")
# The demo's account-information provider (tools/fakes/aggregator.py), to which seed_demo hands
# the late demo customer's consent; empty outside the demo (a real one is told by the lender).
DEMO_AGGREGATOR_URL = env("DEMO_AGGREGATOR_URL", default="")

# Demo and benchmark data may carry consent marked "demo_seed"; never in production.
DEMO_SEED_ALLOWED = env.bool("DEMO_SEED_ALLOWED", default=False)
