"""The payment providers of ``make run``: the Daraja and Stripe fakes on loopback, in demo mode.

    python -m tools.fakes.demo --server http://127.0.0.1:8000

``tools/run_demo.py`` starts this beside the server and stops it with the demo. Both fakes
listen on 127.0.0.1 only, at fixed ports (``DEMO_DARAJA_PORT``, 8701; ``DEMO_STRIPE_PORT``,
8702), and know the demo lenders' accounts (``apps.demo.providers``), which ``seed_demo``
types into the lenders' provider accounts:

* Daraja: Demo Lender Kenya's app and paybill. A customer who is sent a prompt enters the
  PIN a few seconds later, and Daraja calls the server back; ``GET /`` is the M-Pesa menu's
  Pay Bill (also ``python -m tools.fakes.daraja pay-bill``), sent to the C2B URLs the server
  registers when the demo is seeded.
* Stripe: Demo Lender México's account, its events signed and sent to the lender's webhook
  endpoint on ``--server``. Its Checkout page takes a card or issues an OXXO voucher; the
  voucher's page, and the store's till at ``GET /``, pay a voucher "at the store".

Each fake says on stdout what it does; SIGTERM or Ctrl+C stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from apps.demo import providers
from tools.fakes.daraja import FakeDaraja
from tools.fakes.stripe import FakeStripe


def demo_fakes(
    server: str, *, pin_after: float = providers.MPESA_PIN_AFTER_SECONDS
) -> tuple[FakeDaraja, FakeStripe]:
    """The two fakes as the demo plays them (not started yet): the demo lenders' accounts,
    the Mexican lender's webhook endpoint on ``server``, a customer who enters the M-Pesa PIN
    ``pin_after`` seconds after a prompt."""
    daraja = FakeDaraja(demo=True, answer_after=pin_after)
    daraja.app(
        key=providers.MPESA_CONSUMER_KEY,
        secret=providers.MPESA_CONSUMER_SECRET,
        passkey=providers.MPESA_PASSKEY,
        shortcode=providers.MPESA_SHORTCODE,
    )
    stripe = FakeStripe([providers.STRIPE_SECRET_KEY], demo=True)
    stripe.webhook(
        f"{server.rstrip('/')}{providers.STRIPE_WEBHOOK_PATH}",
        providers.STRIPE_WEBHOOK_SECRET,
        api_key=providers.STRIPE_SECRET_KEY,
    )
    return daraja, stripe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fakes.demo", description=__doc__)
    parser.add_argument("--server", required=True, help="the demo's address, which they call")
    parser.add_argument(
        "--daraja-port",
        type=int,
        default=int(os.environ.get("DEMO_DARAJA_PORT") or providers.DARAJA_PORT),
    )
    parser.add_argument(
        "--stripe-port",
        type=int,
        default=int(os.environ.get("DEMO_STRIPE_PORT") or providers.STRIPE_PORT),
    )
    parser.add_argument(
        "--pin-after",
        type=float,
        default=providers.MPESA_PIN_AFTER_SECONDS,
        help="seconds before the customer enters the M-Pesa PIN",
    )
    args = parser.parse_args(argv)

    daraja, stripe = demo_fakes(args.server, pin_after=args.pin_after)
    try:
        daraja_base = daraja.start(port=args.daraja_port)
    except OSError as error:
        print(f"fakes: port {args.daraja_port} for Daraja: {error.strerror}", file=sys.stderr)
        return 1
    try:
        stripe_base = stripe.start(port=args.stripe_port)
    except OSError as error:
        daraja.stop()
        print(f"fakes: port {args.stripe_port} for Stripe: {error.strerror}", file=sys.stderr)
        return 1
    print(f"fakes: Daraja (M-Pesa) on {daraja_base} and Stripe on {stripe_base}", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    daraja.stop()
    stripe.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
