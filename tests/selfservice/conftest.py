"""Logging in to the customer's pages as a customer does: the code sent by SMS."""

import re

import pytest
from django.urls import reverse


def code_from(sms_outbox) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)


@pytest.fixture
def ask_code(client, django_capture_on_commit_callbacks):
    """POST the phone number; the SMS goes out once the request's transaction commits."""

    def ask(lender, phone: str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("customers:login", kwargs={"lender_slug": lender.slug}), {"phone": phone}
            )

    return ask


@pytest.fixture
def log_in(client, ask_code, sms_outbox):
    def log_in(lender, customer):
        assert ask_code(lender, customer.phone).status_code == 302
        code_url = reverse("customers:code", kwargs={"lender_slug": lender.slug})
        return client.post(code_url, {"code": code_from(sms_outbox)})

    return log_in
