"""bench-lender-api's server settings: the test settings, with the floor's URL in front of the
product's (tools/bench/floor_urls.py)."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tools.bench.floor_urls"
