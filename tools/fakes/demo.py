"""The providers of ``make run``: the fakes of Daraja, Stripe, Africa's Talking, WhatsApp and
Twilio on loopback, in demo mode.

    python -m tools.fakes.demo --server http://127.0.0.1:8000

``tools/run_demo.py`` starts this beside the server and stops it with the demo. The fakes
listen on 127.0.0.1 only, at fixed ports (``DEMO_DARAJA_PORT``, 8701; ``DEMO_STRIPE_PORT``,
8702; ``DEMO_AFRICASTALKING_PORT``, 8703; ``DEMO_WHATSAPP_PORT``, 8704; ``DEMO_TWILIO_PORT``,
8705; ``DEMO_AGGREGATOR_PORT``, 8706), and know the demo lenders' accounts (``apps.demo.providers``), which ``seed_demo``
types into the lenders' provider accounts:

* Daraja: Demo Lender Kenya's app and paybill. A customer who is sent a prompt enters the
  PIN a few seconds later, and Daraja calls the server back; ``GET /`` is the M-Pesa menu's
  Pay Bill (also ``python -m tools.fakes.daraja pay-bill``), sent to the C2B URLs the server
  registers when the demo is seeded.
* Stripe: Demo Lender México's account, its events signed and sent to the lender's webhook
  endpoint on ``--server``. Its Checkout page takes a card or issues an OXXO voucher; the
  voucher's page, and the store's till at ``GET /``, pay a voucher "at the store".
* Twilio Voice (the same fake as Twilio's SMS): Demo Lender México's reminder calls; it
  prints each call's script, and ``python -m tools.fakes.twilio_voice press 1`` is the
  customer pressing a key on the last call.
* The account-information provider: Demo Lender México's funds alerts; ``seed_demo`` hands it
  the late customer's consent, and it raises an alert a little later (``python -m
  tools.fakes.aggregator alert <reference>`` raises another).
* Africa's Talking and WhatsApp: Demo Lender Kenya's SMS shortcode and WhatsApp business
  number; Twilio: Demo Lender México's number. Each prints the messages it is given (the
  number's last four digits) and reports them delivered a few seconds later to the
  addresses ``seed_demo`` typed into its dashboard (the ones the back office shows), signed
  as the provider signs; ``python -m tools.fakes.africastalking reply +2547... STOP`` (and
  ``tools.fakes.whatsapp``, ``tools.fakes.twilio``) is a customer writing back. The
  WhatsApp number has one approved template, in English, Spanish and Chinese, which every
  message goes as.

Each fake says on stdout what it does; SIGTERM or Ctrl+C stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from apps.demo import providers
from tools.fakes.africastalking import FakeAfricasTalking
from tools.fakes.aggregator import FakeAggregator
from tools.fakes.daraja import FakeDaraja
from tools.fakes.stripe import FakeStripe
from tools.fakes.twilio_voice import FakeTwilioVoice
from tools.fakes.whatsapp import FakeWhatsApp

# each fake's default port (DEMO_<NAME>_PORT, --<name>-port) and what it is called on stdout
PORTS = {
    "daraja": providers.DARAJA_PORT,
    "stripe": providers.STRIPE_PORT,
    "africastalking": providers.AFRICASTALKING_PORT,
    "whatsapp": providers.WHATSAPP_PORT,
    "twilio": providers.TWILIO_PORT,
    "aggregator": providers.AGGREGATOR_PORT,
}
NAMES = {
    "daraja": "Daraja (M-Pesa)",
    "stripe": "Stripe",
    "africastalking": "Africa's Talking",
    "whatsapp": "WhatsApp",
    "twilio": "Twilio",
    "aggregator": "Account-information provider (funds alerts)",
}
Fake = (
    FakeDaraja | FakeStripe | FakeAfricasTalking | FakeWhatsApp | FakeTwilioVoice | FakeAggregator
)


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


def messaging_fakes(
    *, report_after: float = providers.DELIVERED_AFTER_SECONDS
) -> tuple[FakeAfricasTalking, FakeWhatsApp, FakeTwilioVoice]:
    """The three messaging fakes as the demo plays them (not started yet): Demo Lender
    Kenya's Africa's Talking app and WhatsApp number, Demo Lender México's Twilio account,
    each message reported delivered ``report_after`` seconds after it is taken."""
    africastalking = FakeAfricasTalking(demo=True, report_after=report_after)
    africastalking.app(
        username=providers.AFRICASTALKING_USERNAME,
        api_key=providers.AFRICASTALKING_API_KEY,
        sender_ids=(providers.AFRICASTALKING_SHORTCODE,),
    )
    whatsapp = FakeWhatsApp(demo=True, report_after=report_after)
    whatsapp.account(
        phone_number_id=providers.WHATSAPP_PHONE_NUMBER_ID,
        business_account_id=providers.WHATSAPP_BUSINESS_ACCOUNT_ID,
        display_phone_number=providers.WHATSAPP_DISPLAY_NUMBER,
        access_token=providers.WHATSAPP_ACCESS_TOKEN,
        app_secret=providers.WHATSAPP_APP_SECRET,
        verify_token=providers.WHATSAPP_VERIFY_TOKEN,
        templates={
            (providers.WHATSAPP_TEMPLATE, language): 1
            for language in providers.WHATSAPP_TEMPLATE_LANGUAGES
        },
    )
    twilio = FakeTwilioVoice(demo=True, report_after=report_after)
    twilio.account(sid=providers.TWILIO_ACCOUNT_SID, auth_token=providers.TWILIO_AUTH_TOKEN)
    return africastalking, whatsapp, twilio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fakes.demo", description=__doc__)
    parser.add_argument("--server", required=True, help="the demo's address, which they call")
    for name, default in PORTS.items():
        variable = f"DEMO_{name.upper()}_PORT"
        parser.add_argument(
            f"--{name}-port", type=int, default=int(os.environ.get(variable) or default)
        )
    parser.add_argument(
        "--pin-after",
        type=float,
        default=providers.MPESA_PIN_AFTER_SECONDS,
        help="seconds before the customer enters the M-Pesa PIN",
    )
    args = parser.parse_args(argv)

    daraja, stripe = demo_fakes(args.server, pin_after=args.pin_after)
    africastalking, whatsapp, twilio = messaging_fakes()
    aggregator = FakeAggregator(name=providers.FUNDS_AGGREGATOR.lower(), demo=True)
    aggregator.lender(providers.FUNDS_LENDER, providers.FUNDS_SECRET)
    fakes: dict[str, Fake] = {
        "daraja": daraja,
        "stripe": stripe,
        "africastalking": africastalking,
        "whatsapp": whatsapp,
        "twilio": twilio,
        "aggregator": aggregator,
    }
    started: list[Fake] = []
    for name, fake in fakes.items():
        port = getattr(args, f"{name}_port")
        try:
            address = fake.start(port=port)
        except OSError as error:
            for running in started:
                running.stop()
            print(f"fakes: port {port} for {NAMES[name]}: {error.strerror}", file=sys.stderr)
            return 1
        started.append(fake)
        print(f"fakes: {NAMES[name]} on {address}", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    for fake in started:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
