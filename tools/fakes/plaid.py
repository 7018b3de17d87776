"""A loopback stand-in for Plaid's API: the two calls the product's adapter makes with Plaid's
own client (``apps.integrations.funds_plaid``), and the webhooks Plaid sends, signed as Plaid
signs them.

* every call takes the team's keys (``PLAID-CLIENT-ID`` and ``PLAID-SECRET`` headers, as the
  client sends them, or ``client_id`` and ``secret`` in the body): ``INVALID_API_KEYS``
  otherwise. Errors are Plaid's documented shape (``error_type``, ``error_code``,
  ``error_message``, ``display_message``, ``request_id``) with HTTP 400;
* ``POST /webhook_verification_key/get`` (``key_id``): the EC P-256 public key (a JWK) this
  fake generated and signs its webhooks with; ``INVALID_INPUT`` for a key id it never made;
* ``POST /accounts/balance/get`` (``access_token``): the Item's accounts with their balances
  as ``item(...)`` set them; ``INVALID_ACCESS_TOKEN`` for a token it never gave,
  ``ITEM_LOGIN_REQUIRED`` (``ITEM_ERROR``) once ``login_required`` says the customer must
  log in to their bank again.

``webhook(url, item_id, code=...)`` posts a webhook as Plaid does: a JSON body and its
``Plaid-Verification`` header, an ES256 JWT with ``iat`` and the body's
``request_body_sha256``; ``signed(...)`` gives the body and headers to a test (to post
late, twice or tampered), ``sign(body)`` the header of any body. ``calls`` records each API call's path (never a key or token).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tools.fakes.loopback import PostServer


def _b64(number: int) -> str:
    return urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


@dataclass
class FakeItem:
    item_id: str
    currency: str
    available: Decimal
    login_required: bool = False


@dataclass
class FakePlaid(PostServer):
    keys: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    items: dict[str, FakeItem] = field(default_factory=dict)  # access token -> item
    calls: list[str] = field(default_factory=list)
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    # the driver: the lender's team and its customers' Items
    def team(self) -> tuple[str, str]:
        """A new team's ``client_id`` and ``secret`` (24 and 30 hex digits, as Plaid's)."""
        client_id, secret = secrets.token_hex(12), secrets.token_hex(15)
        self.keys[client_id] = secret
        return client_id, secret

    def item(
        self, *, currency: str, available: str, login_required: bool = False
    ) -> tuple[str, str]:
        """A new Item, one checking account holding ``available``: its ``item_id`` and the
        ``access_token`` Plaid's token exchange gives for it."""
        item_id = secrets.token_urlsafe(27)
        token = f"access-sandbox-{uuid.uuid4()}"
        self.items[token] = FakeItem(item_id, currency, Decimal(available), login_required)
        return item_id, token

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "alg": "ES256",
            "crv": "P-256",
            "kid": self.kid,
            "kty": "EC",
            "use": "sig",
            "x": _b64(numbers.x),
            "y": _b64(numbers.y),
            "created_at": self.created_at,
            "expired_at": None,
        }

    def signed(
        self, item_id: str, *, code: str = "SYNC_UPDATES_AVAILABLE", iat: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook's body and headers, as Plaid posts it for ``item_id``."""
        body = json.dumps(
            {
                "webhook_type": "TRANSACTIONS",
                "webhook_code": code,
                "item_id": item_id,
                "initial_update_complete": True,
                "historical_update_complete": True,
                "environment": "sandbox",
            }
        ).encode()
        return body, {
            "Content-Type": "application/json",
            "Plaid-Verification": self.sign(body, iat),
        }

    def sign(self, body: bytes, iat: int | None = None) -> str:
        """The ``Plaid-Verification`` JWT of ``body``, signed at ``iat`` (now)."""
        claims = {
            "iat": int(time.time()) if iat is None else iat,
            "request_body_sha256": hashlib.sha256(body).hexdigest(),
        }
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def webhook(self, url: str, item_id: str, **kwargs: Any) -> requests.Response:
        body, headers = self.signed(item_id, **kwargs)
        return requests.post(url, data=body, headers=headers, timeout=30)

    # the API
    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        self.calls.append(path)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._error("INVALID_REQUEST", "INVALID_BODY", "The body is not JSON.")
        lowered = {k.lower(): v for k, v in headers.items()}
        client_id = lowered.get("plaid-client-id") or data.get("client_id", "")
        secret = lowered.get("plaid-secret") or data.get("secret", "")
        if not client_id or self.keys.get(client_id) != secret:
            return self._error("INVALID_INPUT", "INVALID_API_KEYS", "Invalid client_id or secret.")
        if path == "/webhook_verification_key/get":
            if data.get("key_id") != self.kid:
                return self._error("INVALID_INPUT", "INVALID_FIELD", "Unknown key_id.")
            return self._ok({"key": self.jwk()})
        if path == "/accounts/balance/get":
            return self._balance(str(data.get("access_token", "")))
        return self._error("INVALID_REQUEST", "NOT_FOUND", "Unknown path.", status=404)

    def _balance(self, token: str) -> tuple[int, bytes, str]:
        item = self.items.get(token)
        if item is None:
            return self._error("INVALID_INPUT", "INVALID_ACCESS_TOKEN", "Unknown access token.")
        if item.login_required:
            return self._error(
                "ITEM_ERROR",
                "ITEM_LOGIN_REQUIRED",
                "the login details of this item have changed",
                display="Please log in to your bank again.",
            )
        balances = {
            "available": float(item.available),
            "current": float(item.available),
            "limit": None,
            "iso_currency_code": item.currency,
            "unofficial_currency_code": None,
        }
        account = {
            "account_id": hashlib.sha256(item.item_id.encode()).hexdigest()[:37],
            "balances": balances,
            "mask": "0000",
            "name": "Plaid Checking",
            "official_name": "Plaid Gold Standard 0% Interest Checking",
            "type": "depository",
            "subtype": "checking",
        }
        return self._ok(
            {
                "accounts": [account],
                "item": {
                    "item_id": item.item_id,
                    "webhook": "",
                    "error": None,
                    "available_products": ["balance"],
                    "billed_products": ["transactions"],
                    "consent_expiration_time": None,
                    "update_type": "background",
                },
            }
        )

    @staticmethod
    def _ok(data: dict[str, Any]) -> tuple[int, bytes, str]:
        data["request_id"] = secrets.token_hex(8)
        return 200, json.dumps(data).encode(), "application/json"

    @staticmethod
    def _error(
        kind: str, code: str, message: str, *, display: str | None = None, status: int = 400
    ) -> tuple[int, bytes, str]:
        error = {
            "error_type": kind,
            "error_code": code,
            "error_message": message,
            "display_message": display,
            "request_id": secrets.token_hex(8),
        }
        return status, json.dumps(error).encode(), "application/json"
