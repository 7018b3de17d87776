"""Funds alerts from Plaid (plaid.com), through Plaid's own client (``plaid-python``).

A lender in Plaid's markets (the US, Canada, the UK and the EU) links each consenting
customer's bank as a Plaid Item (``apps.customers.models.PlaidItem``) and points the Item's
webhook at ``/api/funds/v1/plaid/<lender>/``. Plaid then posts a JSON body naming the
``item_id`` with a ``webhook_type`` and ``webhook_code``, signed by a ``Plaid-Verification``
header: a JWT (ES256) whose key, named by its ``kid``, Plaid gives through
``/webhook_verification_key/get``, whose ``iat`` is when it was signed and whose
``request_body_sha256`` is the SHA-256 of the body. Plaid's documented check
(``webhook_read``): the header's ``alg`` is ES256, the key is Plaid's and not expired, the
signature holds, ``iat`` is at most ``TOLERANCE`` old, and the body's hash matches.

The balance (``available_balance``) is read with ``/accounts/balance/get`` under the Item's
access token (opened here, never logged); Plaid's errors (``ITEM_LOGIN_REQUIRED``: the
customer must log in to their bank again) come back as ``PlaidError`` with Plaid's code.

The lender's Plaid account (``ProviderAccount``, provider ``plaid``) holds its ``client_id``
and ``secret`` sealed, and its ``environment`` (sandbox or production); ``PLAID_API_BASE``,
when set, replaces the environment's address (the tests' and the demo's loopback fake,
``tools/fakes/plaid.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import jwt
import plaid
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

from apps.integrations.funds import AlertRefused
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.integrations.payments.registry import callback_base_url
from apps.integrations.selectors import provider_account_by_slug

PLAID = ProviderAccount.Provider.PLAID.value
TOLERANCE = timedelta(minutes=5)  # Plaid's: a webhook signed longer ago is not accepted
HEADER = "Plaid-Verification"
ENVIRONMENTS = {"sandbox": plaid.Environment.Sandbox, "production": plaid.Environment.Production}
TIMEOUT_SECONDS = 15
KEY_CACHE_SECONDS = 10 * 60


class PlaidError(Exception):
    """Plaid answered a call with an error: ``code`` is Plaid's ``error_code``
    (``ITEM_LOGIN_REQUIRED``, ...), or ``API_UNREACHABLE`` when it did not answer."""

    @property
    def code(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class PlaidAccount:
    lender_id: int
    lender_slug: str
    client_id: str
    secret: str
    host: str


@dataclass(frozen=True, slots=True)
class PlaidWebhook:
    item_id: str
    webhook_type: str
    webhook_code: str
    key: str  # the SHA-256 of the signed header: the same webhook posted again has it too


def plaid_account_for(*, lender_slug: str) -> PlaidAccount | None:
    """The lender's Plaid account in use, with its opened keys; None without one."""
    account = provider_account_by_slug(lender_slug=lender_slug, provider=PLAID)
    if account is None or not account.enabled:
        return None
    keys = unseal(account.sealed_secrets)
    if not keys.get("client_id") or not keys.get("secret"):
        return None
    environment = str(account.settings.get("environment", "sandbox"))
    return PlaidAccount(
        lender_id=account.lender_id,
        lender_slug=lender_slug,
        client_id=keys["client_id"],
        secret=keys["secret"],
        host=settings.PLAID_API_BASE or ENVIRONMENTS.get(environment, plaid.Environment.Sandbox),
    )


def plaid_webhook_url(*, lender_slug: str) -> str:
    """The address Plaid posts the lender's Items' webhooks to: each Item's ``webhook``."""
    return callback_base_url() + reverse("funds-api:plaid", kwargs={"lender_slug": lender_slug})


def _client(account: PlaidAccount) -> plaid_api.PlaidApi:
    configuration = plaid.Configuration(
        host=account.host,
        api_key={"clientId": account.client_id, "secret": account.secret},
    )
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def _error_code(exc: plaid.ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("error_code") or "API_ERROR")[:60]
    except (ValueError, AttributeError):
        return "API_ERROR"


def _verification_key(account: PlaidAccount, kid: str) -> dict[str, str]:
    """Plaid's public key ``kid`` (a JWK), kept for ``KEY_CACHE_SECONDS`` as Plaid advises
    (a key it expires is refused again once that has passed); ``AlertRefused`` for one
    Plaid does not know or that has expired."""
    cache_key = "plaid:jwk:" + hashlib.sha256(f"{account.host} {kid}".encode()).hexdigest()
    cached = cache.get(cache_key)
    if isinstance(cached, dict):
        return cached
    try:
        answer = _client(account).webhook_verification_key_get(
            WebhookVerificationKeyGetRequest(key_id=kid), _request_timeout=TIMEOUT_SECONDS
        )
    except plaid.ApiException as exc:
        raise AlertRefused("signature_invalid") from exc
    key = answer["key"].to_dict()
    if key.get("expired_at"):
        raise AlertRefused("signature_invalid")
    jwk = {k: str(v) for k, v in key.items() if k in ("kty", "crv", "x", "y", "alg", "kid")}
    cache.set(cache_key, jwk, KEY_CACHE_SECONDS)
    return jwk


def webhook_read(
    *,
    account: PlaidAccount,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime | None = None,
) -> PlaidWebhook:
    """The webhook in ``body`` once ``Plaid-Verification`` holds (module docstring);
    ``AlertRefused`` (``signature_invalid``, ``stale``, ``malformed``) otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    token = lowered.get(HEADER.lower(), "")
    now = now or datetime.now(UTC)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AlertRefused("signature_invalid") from exc
    kid = header.get("kid")
    if header.get("alg") != "ES256" or not isinstance(kid, str) or not kid:
        raise AlertRefused("signature_invalid")
    key = jwt.PyJWK(_verification_key(account, kid), algorithm="ES256")
    try:
        claims = jwt.decode(
            token, key=key, algorithms=["ES256"], options={"require": ["iat"], "verify_iat": False}
        )
        signed = datetime.fromtimestamp(int(claims["iat"]), tz=UTC)
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError) as exc:
        raise AlertRefused("signature_invalid") from exc
    if now - signed > TOLERANCE or signed - now > TOLERANCE:
        raise AlertRefused("stale")
    claimed = str(claims.get("request_body_sha256", ""))
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), claimed):
        raise AlertRefused("signature_invalid")
    try:
        data = json.loads(body)
        return PlaidWebhook(
            item_id=str(data["item_id"])[:100],
            webhook_type=str(data["webhook_type"])[:40],
            webhook_code=str(data["webhook_code"])[:60],
            key=hashlib.sha256(token.encode()).hexdigest(),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AlertRefused("malformed") from exc


def available_balance(*, account: PlaidAccount, sealed_token: str, currency: str) -> Decimal | None:
    """The highest available balance in ``currency`` among the Item's accounts (one account
    pays the whole amount), read now with Plaid's ``/accounts/balance/get``; None when no
    account in that currency says. ``PlaidError`` with Plaid's code when Plaid refuses."""
    access_token = unseal(sealed_token).get("access_token", "")
    try:
        answer = _client(account).accounts_balance_get(
            AccountsBalanceGetRequest(access_token=access_token), _request_timeout=TIMEOUT_SECONDS
        )
    except plaid.ApiException as exc:
        raise PlaidError(_error_code(exc)) from exc
    except (OSError, plaid.ApiValueError) as exc:  # urllib3's errors are OSErrors
        raise PlaidError("API_UNREACHABLE") from exc
    best: Decimal | None = None
    for bank_account in answer.to_dict().get("accounts", []):
        balances = bank_account.get("balances") or {}
        if str(balances.get("iso_currency_code") or "").upper() != currency.upper():
            continue
        try:
            amount = Decimal(str(balances.get("available")))
        except InvalidOperation:
            continue
        if amount.is_finite() and (best is None or amount > best):
            best = amount
    return best
