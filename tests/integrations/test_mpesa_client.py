"""The M-Pesa (Daraja) client against a loopback fake that speaks Daraja's requests, answers
and errors: the access token, the STK push, its status query, and the STK callback."""

from dataclasses import replace
from decimal import Decimal

import pytest

from apps.integrations.payments import mpesa
from apps.integrations.payments.mpesa import (
    CallbackMalformed,
    DarajaClient,
    DarajaError,
    MpesaAccount,
    stk_callback_parse,
)
from tools.fakes.daraja import FakeDaraja

ACCOUNT = MpesaAccount(
    shortcode="174379",
    passkey="bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
    consumer_key="consumer-key-1",
    consumer_secret="consumer-secret-1",
)


@pytest.fixture
def daraja():
    fake = FakeDaraja()
    fake.app(
        key=ACCOUNT.consumer_key,
        secret=ACCOUNT.consumer_secret,
        passkey=ACCOUNT.passkey,
        shortcode=ACCOUNT.shortcode,
    )
    base = fake.start()
    mpesa._tokens.clear()
    yield fake, base
    fake.stop()
    mpesa._tokens.clear()


def push(client: DarajaClient, amount: str = "1650.00", phone: str = "254712345678"):
    return client.stk_push(
        amount=Decimal(amount),
        phone=phone,
        account_reference="SC-AB12CD34",
        description="Installment",
        callback_url="https://pay.example.com/api/payments/v1/mpesa/stk/token/",
    )


def test_an_stk_push_reaches_the_customers_phone_for_the_amount(daraja) -> None:
    fake, base = daraja
    accepted = push(DarajaClient(ACCOUNT, base_url=base))
    asked = fake.pushes[accepted.checkout_request_id]
    assert (asked.amount, asked.phone, asked.shortcode) == (1650, "254712345678", "174379")
    assert asked.account_reference == "SC-AB12CD34"
    assert asked.callback_url.endswith("/mpesa/stk/token/")


def test_the_token_is_asked_for_once_and_reused(daraja) -> None:
    fake, base = daraja
    client = DarajaClient(ACCOUNT, base_url=base)
    push(client)
    push(client, amount="10")
    push(DarajaClient(ACCOUNT, base_url=base), amount="20")  # another client of the same app
    assert fake.token_requests == 1


def test_cents_are_rounded_up_to_a_whole_shilling_and_nothing_below_one(daraja) -> None:
    fake, base = daraja
    client = DarajaClient(ACCOUNT, base_url=base)
    accepted = push(client, amount="1649.50")
    assert fake.pushes[accepted.checkout_request_id].amount == 1650
    accepted = push(client, amount="1649.40")  # up, never down: the loan is never short
    assert fake.pushes[accepted.checkout_request_id].amount == 1650
    with pytest.raises(DarajaError) as refused:
        push(client, amount="0")
    assert refused.value.code == "amount"


def test_darajas_errors_come_back_with_their_code(daraja) -> None:
    _fake, base = daraja
    client = DarajaClient(ACCOUNT, base_url=base)
    with pytest.raises(DarajaError) as refused:
        push(client, phone="0712345678")  # not in 2547... form
    assert (refused.value.code, refused.value.message) == (
        "400.002.02",
        "Bad Request - Invalid PhoneNumber",
    )
    wrong = replace(ACCOUNT, consumer_secret="not-it")
    with pytest.raises(DarajaError) as refused:
        push(DarajaClient(wrong, base_url=base))
    assert refused.value.code == "400.008.01"
    bad_passkey = replace(ACCOUNT, passkey="x" * 64)
    with pytest.raises(DarajaError) as refused:
        push(DarajaClient(bad_passkey, base_url=base))
    assert refused.value.message == "Bad Request - Invalid Password"


def test_the_query_says_pending_until_the_customer_answers(daraja) -> None:
    fake, base = daraja
    client = DarajaClient(ACCOUNT, base_url=base)
    accepted = push(client)
    pending = client.stk_query(checkout_request_id=accepted.checkout_request_id)
    assert (pending.pending, pending.paid) == (True, False)
    fake.settle(accepted.checkout_request_id, 1032, callback=False)
    cancelled = client.stk_query(checkout_request_id=accepted.checkout_request_id)
    assert (cancelled.pending, cancelled.result_code, cancelled.paid) == (False, 1032, False)
    other = push(client)
    fake.settle(other.checkout_request_id, 0, callback=False)
    assert client.stk_query(checkout_request_id=other.checkout_request_id).paid


def test_the_stk_callback_is_read_as_daraja_sends_it() -> None:
    paid = stk_callback_parse(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": "ws_CO_191220191020363925",
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": 1650.00},
                            {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
                            {"Name": "Balance"},
                            {"Name": "TransactionDate", "Value": 20191219102115},
                            {"Name": "PhoneNumber", "Value": 254712345678},
                        ]
                    },
                }
            }
        }
    )
    assert (paid.paid, paid.receipt, paid.amount) == (True, "NLJ7RT61SV", Decimal("1650.0"))
    assert paid.paid_at.isoformat() == "2019-12-19T10:21:15+03:00"  # Nairobi time
    cancelled = stk_callback_parse(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "1",
                    "CheckoutRequestID": "ws_CO_2",
                    "ResultCode": 1032,
                    "ResultDesc": "Request cancelled by user",
                }
            }
        }
    )
    assert (cancelled.paid, cancelled.receipt, cancelled.amount) == (False, "", None)
    for body in ({}, {"Body": {}}, {"Body": {"stkCallback": {"ResultCode": "x"}}}, []):
        with pytest.raises(CallbackMalformed):
            stk_callback_parse(body)
