"""Play the payment provider: sign an event with a lender's secret and post it.

    python manage.py provider_webhook --lender demo-ke --loan SC-ABCD2345 --amount 500
    python manage.py provider_webhook --lender demo-ke --loan SC-ABCD2345 --amount 200 \\
        --reverses MP-1 --kind refund
    python manage.py provider_webhook --lender demo-ke --print-secret

It posts to the demo's address (DEMO_BASE_URL, from DEMO_HOST and DEMO_PORT)
unless --url names another server.
"""

import json
import secrets
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.integrations.payments.signing import (
    LENDER_HEADER,
    SIGNATURE_HEADER,
    sign,
    webhook_secret_for,
)
from apps.lenders.models import Lender


class Command(BaseCommand):
    help = "Sign and post a payment (or reversal) event to the webhook, as the provider would."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lender", required=True, metavar="SLUG")
        parser.add_argument("--provider", default="demo")
        parser.add_argument("--loan", metavar="REFERENCE")
        parser.add_argument("--amount")
        parser.add_argument("--currency", help="defaults to the lender's currency")
        parser.add_argument(
            "--reference", help="the provider's payment reference (random if omitted)"
        )
        parser.add_argument(
            "--reverses", metavar="REFERENCE", help="send a reversal of this payment"
        )
        parser.add_argument("--kind", choices=["chargeback", "refund"], default="chargeback")
        parser.add_argument(
            "--url", default=settings.DEMO_BASE_URL, help="the server (default: the demo's)"
        )
        parser.add_argument(
            "--print-secret", action="store_true", help="print the lender's webhook secret"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        lender = Lender.objects.filter(slug=opts["lender"]).first()
        if lender is None:
            raise CommandError(f"no lender {opts['lender']!r}")
        secret = webhook_secret_for(lender_slug=lender.slug, provider=opts["provider"])
        if opts["print_secret"]:
            self.stdout.write(secret.hex())
            return
        if not (opts["loan"] and opts["amount"]):
            raise CommandError("--loan and --amount are required to send an event")
        reference = opts["reference"] or f"MP-{secrets.token_hex(5).upper()}"
        data = {
            "loan": opts["loan"],
            "amount": opts["amount"],
            "currency": opts["currency"] or lender.currency,
            "reference": reference,
            "received_at": timezone.now().isoformat(),
        }
        if opts["reverses"]:
            data.update(reverses=opts["reverses"], kind=opts["kind"])
        event_type = "payment.reversed" if opts["reverses"] else "payment.succeeded"
        body = json.dumps(
            {"id": f"evt_{secrets.token_hex(8)}", "type": event_type, "data": data}
        ).encode()
        request = urllib.request.Request(  # noqa: S310  (the URL is the operator's own server)
            f"{opts['url'].rstrip('/')}/api/payments/v1/webhooks/{opts['provider']}/",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                LENDER_HEADER: lender.slug,
                SIGNATURE_HEADER: sign(secret=secret, body=body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                self.stdout.write(
                    f"{response.status} {response.read().decode()} (reference {reference})"
                )
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{exc.code} {exc.read().decode()}") from exc
