"""Load the demo data set: two lenders and their back-office people.

Passwords and TOTP secrets are printed once, when they are created; run again
with --reset-credentials to print fresh ones.
"""

import secrets
from base64 import b32encode
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django_otp.oath import totp

from apps.accounts.services import operator_create, totp_device_provision, user_password_set
from apps.core.actor import Actor
from apps.lenders.models import Lender, Membership
from apps.lenders.services import agent_create, lender_create

LENDERS = [
    {"name": "Demo Lender Kenya", "slug": "demo-ke", "country": "KE", "currency": "KES",
     "timezone": "Africa/Nairobi", "locale": "en"},
    {"name": "Demo Lender México", "slug": "demo-mx", "country": "MX", "currency": "MXN",
     "timezone": "America/Mexico_City", "locale": "es"},
]  # fmt: skip
PEOPLE = [
    # username, lender slug (None: platform operator), role
    ("operator", None, None),
    ("ke-agent", "demo-ke", Membership.Role.AGENT),
    ("ke-supervisor", "demo-ke", Membership.Role.SUPERVISOR),
    ("ke-admin", "demo-ke", Membership.Role.LENDER_ADMIN),
    ("mx-agent", "demo-mx", Membership.Role.AGENT),
]


class Command(BaseCommand):
    help = "Load demo lenders and back-office users; print their credentials once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-credentials",
            action="store_true",
            help="Issue and print new passwords and TOTP secrets.",
        )

    def handle(self, *args: Any, reset_credentials: bool = False, **options: Any) -> None:
        actor = Actor.system()
        with transaction.atomic():
            lenders = {}
            for spec in LENDERS:
                existing = Lender.objects.filter(slug=spec["slug"]).first()
                lenders[spec["slug"]] = existing or lender_create(**spec, actor=actor)
            user_model = get_user_model()
            issued = []
            for username, slug, role in PEOPLE:
                user = user_model.objects.filter(username=username).first()
                if user is not None and not reset_credentials:
                    continue
                password = f"demo-{secrets.token_urlsafe(9)}"
                if user is None:
                    email = f"{username}@demo.example"
                    if slug is None:
                        user = operator_create(
                            username=username, email=email, password=password, actor=actor
                        )
                    else:
                        user = agent_create(
                            lender=lenders[slug], username=username, email=email,
                            password=password, role=role, actor=actor,
                        )  # fmt: skip
                else:
                    user_password_set(user=user, password=password, actor=actor)
                device = totp_device_provision(user=user, actor=actor)
                issued.append(
                    (
                        username,
                        slug or "all lenders (operator)",
                        role or "superuser",
                        password,
                        device,
                    )
                )

        if not issued:
            self.stdout.write(
                "Demo data already loaded. Credentials were printed when it was first loaded; "
                "run `python manage.py seed_demo --reset-credentials` for new ones."
            )
            return
        self.stdout.write(self.style.SUCCESS("Demo back-office users (shown once):"))
        for username, where, role, password, device in issued:
            secret = b32encode(device.bin_key).decode().rstrip("=")
            self.stdout.write(
                f"  {username:14} {role!s:13} {where:26} password {password}  TOTP secret {secret}"
                f"  (code now: {totp(device.bin_key):06d})"
            )
            self.stdout.write(f"  {'':14} otpauth URI: {device.config_url}")
        self.stdout.write(
            "Add a secret to an authenticator app, or run `make totp SECRET=...`, to get login codes."
        )
