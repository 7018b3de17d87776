from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.services import totp_device_provision, totp_secret_base32
from apps.core.actor import Actor
from apps.lenders.selectors import lender_id_for_user


class Command(BaseCommand):
    help = "Give a user a new authenticator secret (replacing any old one) and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        device = totp_device_provision(
            user=user, lender_id=lender_id_for_user(user_id=user.pk), actor=Actor.system()
        )
        secret = totp_secret_base32(device)
        self.stdout.write(f"TOTP secret for {username} (shown once): {secret}")
        self.stdout.write(f"otpauth URI: {device.config_url}")
