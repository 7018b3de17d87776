"""The one place that reads the environment (django-environ).

Django's own variables use a ``DJANGO_`` prefix; each integration has its own
prefix (``PAYMENTS_``, ``SMS_``, ``AGENT_``, ...). Production settings give no
default for the secrets and addresses it needs, so a missing one fails at start.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for developers; production sets real variables.
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))
