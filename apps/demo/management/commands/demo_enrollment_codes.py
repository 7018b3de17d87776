"""Mint an enrollment code for each sold, not yet enrolled demo phone and save its QR image.

Demo only (``DEMO_SEED_ALLOWED``): a fresh code revokes the one a clerk may
have on screen. Prints one ``<imei> <png path>`` line per phone, which
``make run`` hands to the agent simulator.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.actor import Actor
from apps.devices.models import Device
from apps.devices.provisioning import provisioning_qr_png
from apps.devices.services import enrollment_token_mint


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="folder for the PNG files")
        parser.add_argument("--limit", type=int, default=4)  # the demo's four phones

    def handle(self, *args: Any, out: Path, limit: int, **options: Any) -> None:
        if not settings.DEMO_SEED_ALLOWED:
            raise CommandError("Demo only: set DEMO_SEED_ALLOWED to mint demo enrollment codes.")
        out.mkdir(parents=True, exist_ok=True)
        pending = Device.objects.filter(status=Device.Status.PENDING).order_by("pk")[:limit]
        for device in pending:
            minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
            path = out / f"{device.imei}.png"
            path.write_bytes(provisioning_qr_png(minted.payload))
            self.stdout.write(f"{device.imei} {path}")
