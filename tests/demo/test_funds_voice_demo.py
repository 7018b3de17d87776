"""The demo's funds alerts and reminder calls, as `make run` plays them: seeding sets up Demo
Lender México's voice and funds-alerts accounts, hands its late customer's consent to the
aggregator's fake and queues a reminder call; the aggregator's signed alert reaches the live
server and sends a link to pay by SMS through the Twilio fake; the call is placed through the
same fake, which prints its script, and a key pressed there comes back to the server."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from apps.collections.models import FundsAlert, LoanPause
from apps.collections.services import loan_stage_sweep, overdue_notices_queue
from apps.customers.models import AccountReadingConsent
from apps.demo import providers
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification, VoiceCall
from apps.notifications.services import voice_calls_dispatch
from tools.fakes.aggregator import FakeAggregator
from tools.fakes.demo import messaging_fakes

pytestmark = pytest.mark.django_db(transaction=True)

# a Tuesday morning in Mexico City: inside the contact hours
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/Mexico_City"))


@pytest.fixture
def fakes(live_server, settings):
    africastalking, whatsapp, twilio = messaging_fakes(report_after=0.5)
    aggregator = FakeAggregator(name="belvo", demo=True)
    aggregator.lender(providers.FUNDS_LENDER, providers.FUNDS_SECRET)
    settings.AFRICASTALKING_API_BASE = africastalking.start()
    settings.WHATSAPP_API_BASE = whatsapp.start()
    settings.TWILIO_API_BASE = twilio.start()
    settings.DEMO_AGGREGATOR_URL = aggregator.start()
    settings.DEMO_BASE_URL = settings.PAYMENTS_CALLBACK_BASE_URL = live_server.url
    yield twilio, aggregator
    for fake in (africastalking, whatsapp, twilio, aggregator):
        fake.stop()


def test_the_aggregator_alerts_and_the_call_takes_a_key_in_the_demo(fakes, capsys) -> None:
    twilio, aggregator = fakes
    with time_machine.travel(MORNING, tick=True):
        call_command("seed_demo")
        seeded = capsys.readouterr().out
        mexico = Lender.objects.get(slug=providers.FUNDS_LENDER)
        consent = AccountReadingConsent.objects.get(lender=mexico)
        assert consent.method == "demo_seed"
        assert f"tools.fakes.aggregator alert {consent.reference}" in seeded
        assert "tools.fakes.twilio_voice press 1" in seeded
        assert consent.reference in aggregator.watched
        # money arrives: the alert reaches the server, which sends the link through Twilio
        assert aggregator.alert(consent.reference)["sent"]
        alert = FundsAlert.objects.get(lender=mexico)
        assert alert.outcome == "sent"
        link = Notification.objects.get(lender=mexico, kind="funds")
        assert link.customer_id == consent.customer_id
        # the reminder call: placed, its script printed, a key pressed from the fake
        # the morning's sweep raises the late loan; its overdue notices queue the call
        today = lender_local_date(lender=mexico)
        span = {"lender_id": mexico.pk, "business_date": today, "id_from": 0, "id_to": 10**12}
        loan_stage_sweep(**span)
        overdue_notices_queue(**span)
        assert voice_calls_dispatch()["placed"] == 1
        [call] = twilio.calls_placed.values()
        printed = capsys.readouterr().out
        assert f"call to ...{call.to[-4:]}" in printed
        assert call.said()[0] in printed
        answer = twilio.press(call.sid, "2")
        assert answer.status_code == 200
        assert "promesa" in answer.text.lower() or "promise" in answer.text.lower()
        row = VoiceCall.objects.get(lender=mexico)
        assert (row.digit, row.answer) == ("2", "promise")
        assert LoanPause.objects.filter(loan=row.loan, kind="promise").exists()
