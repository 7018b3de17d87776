"""Load the demo data set: two lenders, their back-office people, policies, products and loans,
their accounts with the payment providers (M-Pesa in Kenya, Stripe in Mexico) and with the
messaging providers (Africa's Talking and WhatsApp in Kenya, Twilio in Mexico).

Passwords and TOTP secrets are printed once, when they are created; run again
with --reset-credentials to print fresh ones. The links printed are on the
demo's address, DEMO_BASE_URL (DEMO_HOST and DEMO_PORT).

Where the providers are the demo's loopback fakes (MPESA_API_BASE and STRIPE_API_BASE set, as
``make run`` sets them), each run registers the Kenyan paybill's C2B URLs with the Daraja fake,
as a lender does once with Safaricom, and prints how to pay in the demo. Where the messaging
providers are the demo's fakes (AFRICASTALKING_API_BASE, WHATSAPP_API_BASE and TWILIO_API_BASE
on loopback), it types the addresses the providers call into the fakes' dashboards, as a
lender's admin pastes them from the back office into the providers', and prints how a customer
replies.
"""

import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from django_otp.oath import totp

from apps.accounts.services import (
    operator_create,
    totp_device_provision,
    totp_secret_base32,
    user_password_set,
)
from apps.collections.models import Loan
from apps.collections.services import installment_late_fees_assess, loan_sign, payment_record
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money
from apps.customers.models import AccountReadingConsent, Customer
from apps.customers.selectors import account_reading_consent_in_force
from apps.customers.services import (
    account_reading_consent_give,
    consent_record_demo_seed,
    customer_get_or_create,
)
from apps.demo import providers
from apps.devices.services import device_register
from apps.integrations.funds import FUNDS_ALERTS
from apps.integrations.messaging.registry import AFRICASTALKING, ROUTES, TWILIO
from apps.integrations.messaging.registry import messaging_callback_url as callback_address
from apps.integrations.messaging.whatsapp import WHATSAPP, whatsapp_webhook_url
from apps.integrations.payments.base import ProviderError
from apps.integrations.payments.registry import MPESA, STRIPE, callback_base_url
from apps.integrations.selectors import provider_account_get
from apps.integrations.services import mpesa_callbacks_register, provider_account_save
from apps.integrations.voice.registry import TWILIO_VOICE as VOICE_PROVIDER
from apps.lenders.models import Lender, LoanProduct, Membership
from apps.lenders.selectors import lender_id_for_user, restriction_policy_version_in_force
from apps.lenders.services import (
    agent_create,
    default_stages,
    lender_create,
    lender_settings_save,
    loan_product_save,
    restriction_policy_create,
)
from apps.retailers.services import demo_counter

LENDERS = [
    {
        "name": "Demo Lender Kenya",
        "slug": "demo-ke",
        "country": "KE",
        "currency": "KES",
        "timezone": "Africa/Nairobi",
        "locale": "en",
    },
    {
        "name": "Demo Lender México",
        "slug": "demo-mx",
        "country": "MX",
        "currency": "MXN",
        "timezone": "America/Mexico_City",
        "locale": "es",
    },
]


def demo_password() -> str:
    """24 random characters. A fixed prefix on a shorter token ("demo-" and 12) was now and
    then refused as too like the user name (about 1 in 800 for clerk-demo-ke), which
    stopped the demo's seeding."""
    return secrets.token_urlsafe(18)


PEOPLE = [
    # username, lender slug (None: platform operator), role
    ("operator", None, None),
    ("ke-agent", "demo-ke", Membership.Role.AGENT),
    ("ke-supervisor", "demo-ke", Membership.Role.SUPERVISOR),
    ("ke-admin", "demo-ke", Membership.Role.LENDER_ADMIN),
    ("mx-agent", "demo-mx", Membership.Role.AGENT),
]


CUSTOMERS = [
    # name, phone as dialled in Kenya, national id, days since signing, IMEI of the phone sold
    ("Amina Wanjiru", "0712 345 678", "23456781", 3, "352099001761481"),
    ("Brian Otieno", "0722 000 111", "30987654", 75, "490154203237518"),
    ("Cynthia Mwangi", "0733 222 444", "27182818", 40, "356938035643809"),
]
# The Mexican customer (phone as dialled in Mexico, CURP), 45 days after the sale with nothing
# paid: the sweep rings her phone's alarms and announces the blocked apps; she pays by OXXO
# voucher (or card) through Stripe.
MEXICAN_CUSTOMERS = [
    ("Lucía Hernández García", "55 1234 5678", "HEGL900315MDFRRC06", 45, "352099001765557"),
]


class Command(BaseCommand):
    help = "Load demo lenders and back-office users; print their credentials once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-credentials",
            action="store_true",
            help="Issue and print new passwords and TOTP secrets.",
        )

    def _seed_lending(self, lenders: dict[str, Lender], actor: Actor) -> list[Any]:
        """A policy and a product per lender, a few Kenyan loans at different ages and a
        Mexican one. Each lender's loans once."""
        loans: list[Loan] = []
        with transaction.atomic():
            for lender in lenders.values():
                if restriction_policy_version_in_force(lender_id=lender.pk) is None:
                    restriction_policy_create(
                        lender=lender,
                        name="Standard ladder",
                        stages=default_stages(lender.locale, country=lender.country),
                        actor=actor,
                    )
                if not LoanProduct.objects.filter(lender=lender).exists():
                    loan_product_save(
                        product=LoanProduct(
                            lender=lender,
                            name="Phone 12 months",
                            installments=12,
                            frequency=LoanProduct.Frequency.MONTHLY,
                            min_down_payment_percent=Decimal(10),
                            interest_method=LoanProduct.InterestMethod.FLAT,
                            interest_rate_percent=Decimal("2.5"),
                            origination_fee_percent=Decimal(2),
                            late_fee_type=LoanProduct.LateFeeType.FIXED,
                            late_fee_value=Decimal(100),
                            grace_days=3,
                        ),
                        actor=actor,
                    )
            kenya, mexico = lenders["demo-ke"], lenders["demo-mx"]
            if not Loan.objects.filter(lender=kenya).exists():
                loans += self._seed_kenya(kenya, actor)
            if not Loan.objects.filter(lender=mexico).exists():
                price, down = Money(Decimal(6000), "MXN"), Money(Decimal(600), "MXN")
                loans += [self._sell(mexico, p, price, down, actor) for p in MEXICAN_CUSTOMERS]
        return loans

    def _sell(
        self,
        lender: Lender,
        person: tuple[str, str, str, int, str],
        price: Money,
        down: Money,
        actor: Actor,
    ) -> Loan:
        """A phone sold on the lender's product at its demo counter: ``person`` is the
        customer's name, phone and national id, how many days ago, and the phone's IMEI."""
        shop, clerk = demo_counter(lender)
        name, phone, national_id, days_ago, imei = person
        customer, _ = customer_get_or_create(
            lender=lender, full_name=name, phone=phone, national_id=national_id, actor=actor
        )
        consent = consent_record_demo_seed(
            customer=customer,
            text="Demo loan: the customer did not take part.",
            text_version="demo",
            clerk_id=clerk.user_id,
            shop_id=shop.pk,
            actor=actor,
        )
        loan = loan_sign(
            customer=customer,
            consent=consent,
            product=LoanProduct.objects.get(lender=lender),
            shop_id=shop.pk,
            device_price=price,
            down_payment=down,
            actor=actor,
            signed_at=timezone.now() - timedelta(days=days_ago),
        )
        device_register(
            loan_id=loan.pk,
            lender_id=loan.lender_id,
            imei=imei,
            brand="Tecno",
            model_name="Spark 20",
            actor=actor,
        )
        return loan

    def _seed_kenya(self, kenya: Lender, actor: Actor) -> list[Loan]:
        _shop, clerk = demo_counter(kenya)
        self.clerk_password = demo_password()
        user_password_set(
            user=clerk.user,
            password=self.clerk_password,
            lender_id=lender_id_for_user(user_id=clerk.user.pk),
            actor=actor,
        )
        self.clerk_username = clerk.user.username
        price, down = Money(Decimal(24000), "KES"), Money(Decimal(4000), "KES")
        loans = [self._sell(kenya, person, price, down, actor) for person in CUSTOMERS]
        # Cynthia paid her first installment; Brian paid nothing.
        first = loans[2].installments.earliest("sequence")
        payment_record(
            loan_id=loans[2].pk,
            amount=Money(first.total_due, "KES"),
            channel="manual",
            provider="manual",
            provider_ref="demo-seed-1",
            received_at=timezone.now() - timedelta(days=5),
            reason="Paid cash at the shop",
            receipt_ref="DEMO-001",
            actor=actor,
        )
        return loans

    def _seed_providers(self, lenders: dict[str, Lender], actor: Actor) -> None:
        """Demo Lender Kenya's M-Pesa paybill and Demo Lender México's Stripe account, as
        their admins would set them up in the back office, once; then, against the demo's
        Daraja fake, the paybill's C2B URLs registered (the fake forgets them when it stops)."""
        kenya, mexico = lenders[providers.MPESA_LENDER], lenders[providers.STRIPE_LENDER]
        if provider_account_get(lender_id=kenya.pk, provider=MPESA) is None:
            provider_account_save(
                lender_id=kenya.pk,
                provider=MPESA,
                enabled=True,
                settings={"shortcode": providers.MPESA_SHORTCODE, "environment": "sandbox"},
                secrets={
                    "consumer_key": providers.MPESA_CONSUMER_KEY,
                    "consumer_secret": providers.MPESA_CONSUMER_SECRET,
                    "passkey": providers.MPESA_PASSKEY,
                },
                actor=actor,
            )
        if provider_account_get(lender_id=mexico.pk, provider=STRIPE) is None:
            provider_account_save(
                lender_id=mexico.pk,
                provider=STRIPE,
                enabled=True,
                settings={},
                secrets={
                    "secret_key": providers.STRIPE_SECRET_KEY,
                    "webhook_secret": providers.STRIPE_WEBHOOK_SECRET,
                },
                actor=actor,
            )
        if not settings.MPESA_API_BASE:
            return  # Safaricom's own API: the lender registers its URLs (README)
        try:
            mpesa_callbacks_register(lender_id=kenya.pk, lender_slug=kenya.slug, actor=actor)
        except (DomainError, ProviderError) as exc:  # the account turned off, the fake down
            self.stderr.write(f"The paybill's C2B URLs were not registered: {exc.code}.")

    def _seed_messaging(self, lenders: dict[str, Lender], actor: Actor) -> None:
        """Demo Lender Kenya's Africa's Talking shortcode and WhatsApp number, Demo Lender
        México's Twilio number, as their admins would set them up in the back office, and
        each lender's channel order, once (what a demo user changes stays); then the fakes'
        dashboards told where to call (they forget it when they stop)."""
        kenya, mexico = lenders[providers.AFRICASTALKING_LENDER], lenders[providers.TWILIO_LENDER]
        accounts = [
            (
                kenya,
                AFRICASTALKING,
                {
                    "username": providers.AFRICASTALKING_USERNAME,
                    "sender_id": providers.AFRICASTALKING_SHORTCODE,
                },
                {"api_key": providers.AFRICASTALKING_API_KEY},
            ),
            (
                kenya,
                WHATSAPP,
                {
                    "phone_number_id": providers.WHATSAPP_PHONE_NUMBER_ID,
                    "business_account_id": providers.WHATSAPP_BUSINESS_ACCOUNT_ID,
                    "message_template": providers.WHATSAPP_TEMPLATE,
                },
                {
                    "access_token": providers.WHATSAPP_ACCESS_TOKEN,
                    "app_secret": providers.WHATSAPP_APP_SECRET,
                    "verify_token": providers.WHATSAPP_VERIFY_TOKEN,
                },
            ),
            (
                mexico,
                TWILIO,
                {
                    "account_sid": providers.TWILIO_ACCOUNT_SID,
                    "from_number": providers.TWILIO_FROM_NUMBER,
                },
                {"auth_token": providers.TWILIO_AUTH_TOKEN},
            ),
        ]
        orders = {kenya.pk: providers.KENYA_CHANNELS, mexico.pk: providers.MEXICO_CHANNELS}
        for lender, provider, values, secrets_ in accounts:
            if provider_account_get(lender_id=lender.pk, provider=provider) is not None:
                continue
            provider_account_save(
                lender_id=lender.pk,
                provider=provider,
                enabled=True,
                settings=values,
                secrets=secrets_,
                actor=actor,
            )
            if lender.pk in orders:  # its first messaging account: the order it tries them in
                lender.message_channels = list(orders.pop(lender.pk))
                lender_settings_save(lender=lender, actor=actor)
        self._messaging_dashboards(kenya, mexico)

    def _messaging_dashboards(self, kenya: Lender, mexico: Lender) -> None:
        """Type the addresses each provider calls (the ones the provider account's page
        shows) into the dashboard of its fake, where the fakes are in use."""
        # the fake's address, the form, its headers and its HTTP Basic credentials
        forms: list[tuple[str, dict[str, str], dict[str, str], tuple[str, str] | None]] = []
        if base := _loopback(settings.AFRICASTALKING_API_BASE):
            urls = {
                route: callback_address(
                    provider=AFRICASTALKING, lender_slug=kenya.slug, route=route
                )
                for route in ROUTES[AFRICASTALKING]
            }
            fields = {"username": providers.AFRICASTALKING_USERNAME, **urls}
            forms.append((base, fields, {"apiKey": providers.AFRICASTALKING_API_KEY}, None))
        if base := _loopback(settings.WHATSAPP_API_BASE):
            fields = {
                "phone_number_id": providers.WHATSAPP_PHONE_NUMBER_ID,
                "callback_url": whatsapp_webhook_url(lender_slug=kenya.slug),
                "verify_token": providers.WHATSAPP_VERIFY_TOKEN,
            }
            token = {"Authorization": f"Bearer {providers.WHATSAPP_ACCESS_TOKEN}"}
            forms.append((base, fields, token, None))
        if base := _loopback(settings.TWILIO_API_BASE):
            fields = {
                "number": providers.TWILIO_FROM_NUMBER,
                "inbound": callback_address(
                    provider=TWILIO, lender_slug=mexico.slug, route="inbound"
                ),
            }
            sid_and_token = (providers.TWILIO_ACCOUNT_SID, providers.TWILIO_AUTH_TOKEN)
            forms.append((base, fields, {}, sid_and_token))
        for base, fields, headers, auth in forms:
            try:
                answer = requests.post(
                    f"{base}/demo/callback-urls",
                    data=fields,
                    headers=headers,
                    auth=auth,
                    timeout=30,
                ).json()
            except (requests.RequestException, ValueError) as exc:  # the fake is down
                answer = {"saved": False, "message": type(exc).__name__}
            if not answer.get("saved"):
                self.stderr.write(f"{base} did not take the demo's addresses: {answer['message']}")

    def _print_messages(self, lenders: dict[str, Lender]) -> None:
        """How a customer answers the demo's texts, where the providers are its fakes."""
        fakes = [
            (settings.AFRICASTALKING_API_BASE, "africastalking", providers.AFRICASTALKING_PORT),
            (settings.WHATSAPP_API_BASE, "whatsapp", providers.WHATSAPP_PORT),
            (settings.TWILIO_API_BASE, "twilio", providers.TWILIO_PORT),
        ]
        if not all(_loopback(base) for base, _, _ in fakes):
            return
        kenya, mexico = lenders[providers.AFRICASTALKING_LENDER], lenders[providers.TWILIO_LENDER]
        oldest = _oldest_loans(kenya, mexico)
        if oldest is None:
            return
        late, lucia = oldest
        commands = {
            name: f".venv/bin/python -m tools.fakes.{name} reply{_url_option(base, port)}"
            for base, name, port in fakes
        }
        self.stdout.write(
            self.style.SUCCESS("Messages, through loopback fakes of the providers (printed):")
        )
        self.stdout.write(
            f"  {kenya.name} tries {', '.join(kenya.message_channels)} (SMS by Africa's Talking "
            f"from {providers.AFRICASTALKING_SHORTCODE}), {mexico.name} "
            f"{', '.join(mexico.message_channels)} (SMS by Twilio); each text is reported "
            f"delivered {providers.DELIVERED_AFTER_SECONDS:g} s later (back office: Notifications)."
        )
        phone = late.customer.phone
        self.stdout.write(
            f"  A customer answers STOP (START undoes it): {commands['africastalking']} {phone} "
            f"STOP; on WhatsApp: {commands['whatsapp']} {phone} STOP; to Twilio: "
            f"{commands['twilio']} {lucia.customer.phone} STOP"
        )

    def _seed_funds_and_voice(self, lenders: dict[str, Lender], actor: Actor) -> None:
        """Demo Lender México's reminder calls (Twilio Voice, its Twilio account) and funds
        alerts (from Belvo), as its admin would set them up (the sweep's overdue notices then
        queue the calls, which beat places inside contact hours); its late customer's consent
        to account reading, handed to the aggregator's fake, which raises an alert a little
        later. Prints how to answer a call and raise another alert."""
        mexico = lenders[providers.VOICE_LENDER]
        accounts = [
            (
                VOICE_PROVIDER,
                {
                    "account_sid": providers.TWILIO_ACCOUNT_SID,
                    "from_number": providers.TWILIO_FROM_NUMBER,
                    "voice_stages": providers.VOICE_STAGES,
                    "agent_number": providers.VOICE_AGENT_NUMBER,
                },
                {"auth_token": providers.TWILIO_AUTH_TOKEN},
            ),
            (
                FUNDS_ALERTS,
                {"aggregator": providers.FUNDS_AGGREGATOR},
                {"alerts_secret": providers.FUNDS_SECRET},
            ),
        ]
        for provider, values, secrets_ in accounts:
            if provider_account_get(lender_id=mexico.pk, provider=provider) is None:
                provider_account_save(
                    lender_id=mexico.pk,
                    provider=provider,
                    enabled=True,
                    settings=values,
                    secrets=secrets_,
                    actor=actor,
                )
        loan = Loan.objects.filter(lender=mexico).order_by("start_date", "pk").first()
        if loan is None:
            return
        customer = loan.customer
        consent = account_reading_consent_in_force(customer_id=customer.pk)
        if consent is None:
            consent = account_reading_consent_give(
                customer_id=customer.pk,
                lender_id=mexico.pk,
                lender_name=mexico.name,
                provider=providers.FUNDS_AGGREGATOR,
                provider_name=providers.FUNDS_AGGREGATOR,
                actor=actor,
                method=AccountReadingConsent.Method.DEMO_SEED,
            )
        self.stdout.write(
            self.style.SUCCESS("Reminder calls and funds alerts (Demo Lender México):")
        )
        self.stdout.write(
            f"  {_who(customer)} gets a reminder call when the sweep raises their late loan "
            "(placed by beat inside Mexico's contact hours; the Twilio fake prints its script). "
            "Answer it: .venv/bin/python -m tools.fakes.twilio_voice press 1 (a link to pay by "
            "SMS), 2 (a promise), 9 (an agent)"
        )
        if not (base := _loopback(settings.DEMO_AGGREGATOR_URL)):
            return
        watch = {
            "lender": mexico.slug,
            "reference": consent.reference,
            "server": callback_base_url(),
            "currency": mexico.currency,
            "after": str(providers.FUNDS_ALERT_AFTER_SECONDS),
        }
        try:
            answer = requests.post(f"{base}/demo/watch", data=watch, timeout=30).json()
        except (requests.RequestException, ValueError) as exc:  # the fake is down
            answer = {"saved": False, "message": type(exc).__name__}
        if not answer.get("saved"):
            self.stderr.write(f"{base} did not take the consent: {answer['message']}")
            return
        self.stdout.write(
            f"  {providers.FUNDS_AGGREGATOR} (a fake) alerts that money arrived in their account "
            f"{providers.FUNDS_ALERT_AFTER_SECONDS:g} s from now: a link to pay goes by SMS "
            "(inside contact hours, once a day). Another: .venv/bin/python -m "
            f"tools.fakes.aggregator alert {consent.reference}"
        )

    def _print_payments(self, lenders: dict[str, Lender]) -> None:
        """How to pay in the demo, where the providers are its loopback fakes."""
        if not (settings.MPESA_API_BASE and settings.STRIPE_API_BASE):
            return
        kenya, mexico = lenders[providers.MPESA_LENDER], lenders[providers.STRIPE_LENDER]
        oldest = _oldest_loans(kenya, mexico)
        if oldest is None:
            return
        late, oxxo = oldest
        base = settings.DEMO_BASE_URL
        mpesa_fake = settings.MPESA_API_BASE.rstrip("/")
        stripe_fake = settings.STRIPE_API_BASE.rstrip("/")
        url = _url_option(mpesa_fake, providers.DARAJA_PORT)
        shortcode = providers.MPESA_SHORTCODE
        self.stdout.write(self.style.SUCCESS("Payments, through loopback fakes of the providers:"))
        self.stdout.write(
            f"  M-Pesa prompt: at {base}/my/{kenya.slug}/ as {_who(late.customer)}, press "
            f'"Pay ... with M-Pesa": the phone\'s owner enters the PIN '
            f"{providers.MPESA_PIN_AFTER_SECONDS:g} s later."
        )
        self.stdout.write(
            f"  M-Pesa menu (Pay Bill {shortcode}, account {late.reference}): {mpesa_fake}/ or "
            f".venv/bin/python -m tools.fakes.daraja pay-bill{url} --shortcode {shortcode} "
            f"--account {late.reference} --amount 500"
        )
        self.stdout.write(
            f"  Card or OXXO: at {base}/my/{mexico.slug}/ as {_who(oxxo.customer)}, press the "
            f'card-or-OXXO button, then "OXXO voucher" on the checkout page; pay the voucher at '
            f"the store: {stripe_fake}/"
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
                password = demo_password()
                if user is None:
                    email = f"{username}@demo.example"
                    if slug is None or role is None:
                        user = operator_create(
                            username=username, email=email, password=password, actor=actor
                        )
                    else:
                        user = agent_create(
                            lender=lenders[slug],
                            username=username,
                            email=email,
                            password=password,
                            role=role,
                            actor=actor,
                        )
                else:
                    user_password_set(
                        user=user,
                        password=password,
                        lender_id=lender_id_for_user(user_id=user.pk),
                        actor=actor,
                    )
                device = totp_device_provision(
                    user=user, lender_id=lender_id_for_user(user_id=user.pk), actor=actor
                )
                issued.append(
                    (
                        username,
                        slug or "all lenders (operator)",
                        role or "superuser",
                        password,
                        device,
                    )
                )

        self.clerk_username = self.clerk_password = ""  # set when the Kenyan loans are made
        loans = self._seed_lending(lenders, actor)
        for lender in lenders.values():
            # the fee runs beat would have made since the back-dated sales (and while the demo
            # was stopped): the pages then ask for what is late, fees included
            installment_late_fees_assess(lender_id=lender.pk, actor=actor)
        self._seed_providers(lenders, actor)
        self._seed_messaging(lenders, actor)
        self._seed_funds_and_voice(lenders, actor)
        if loans:
            self.stdout.write(self.style.SUCCESS("Demo loans:"))
            for loan in loans:
                self.stdout.write(
                    f"  {loan.reference}  {loan.lender.slug}  {loan.customer.full_name:18} "
                    f"financed {loan.financed_amount} {loan.currency}, signed {loan.start_date}"
                )
            if self.clerk_password:
                self.stdout.write(
                    f"Point of sale: {settings.DEMO_BASE_URL}/pos/  clerk {self.clerk_username} "
                    f"password {self.clerk_password} (shown once)"
                )
            sample = loans[0]
            self.stdout.write(
                "Pay as the provider would: python manage.py provider_webhook "
                f"--lender {sample.lender.slug} --loan {sample.reference} --amount 500"
            )
            late = max(
                loans,
                key=lambda loan: (
                    loan.lender.slug == sample.lender.slug,
                    -loan.start_date.toordinal(),
                ),
            )
            self.stdout.write(
                f"Customer pages: {settings.DEMO_BASE_URL}/my/{late.lender.slug}/  log in as "
                f"{late.customer.phone} ({late.customer.full_name}); the code is printed as an SMS"
            )
        self._print_payments(lenders)
        self._print_messages(lenders)
        if not issued:
            self.stdout.write(
                "Demo data already loaded. Credentials were printed when it was first loaded; "
                "run `python manage.py seed_demo --reset-credentials` for new ones."
            )
            return
        self.stdout.write(self.style.SUCCESS("Demo back-office users (shown once):"))
        for username, where, title, password, device in issued:
            secret = totp_secret_base32(device)
            self.stdout.write(
                f"  {username:14} {title!s:13} {where:26} password {password}  TOTP secret {secret}"
                f"  (code now: {totp(device.bin_key):06d})"
            )
            self.stdout.write(f"  {'':14} otpauth URI: {device.config_url}")
        self.stdout.write(
            "Add a secret to an authenticator app, or run `make totp SECRET=...`, to get login codes."
        )


def _who(customer: Customer) -> str:
    return f"{customer.phone} ({customer.full_name})"


def _loopback(base: str) -> str:
    """``base`` without its trailing slash when it is on loopback (a fake of the demo's),
    else ""."""
    return base.rstrip("/") if urlsplit(base).hostname in ("127.0.0.1", "::1", "localhost") else ""


def _oldest_loans(kenya: Lender, mexico: Lender) -> tuple[Loan, Loan] | None:
    """The oldest loan of each demo lender (the late ones the printed examples name)."""
    late = Loan.objects.filter(lender=kenya).order_by("start_date", "pk").first()
    mexican = Loan.objects.filter(lender=mexico).order_by("start_date", "pk").first()
    return (late, mexican) if late is not None and mexican is not None else None


def _url_option(fake: str, port: int) -> str:
    """The ``--url`` a fake's command needs to reach ``fake`` ("" at its default port)."""
    fake = fake.rstrip("/")
    return "" if fake == f"http://127.0.0.1:{port}" else f" --url {fake}"
