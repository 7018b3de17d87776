"""Each lender's Ed25519 signing key, and the phones' enrollment codes, derived from one
master key in the environment.

Nothing secret is stored in the database: the 32-byte seed of a lender's key
version is HMAC-SHA256(master, "ed25519:<lender slug>:v<version>"). Rotating a
lender's key is moving to the next version (``lender_signing_key_rotate``):
each phone learns the new public key from a state signed by the old one.

An enrollment code is the first 16 bytes of HMAC-SHA256(master,
"enrollment-code:<lender slug>:<device id>:<token id>:<nonce>"), URL-safe base64 without
padding (22 characters), the nonce random and stored on the token's row beside the code's
hash: the counter can show a live code again, and the row alone does not give it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings


def lender_signing_key(*, lender_slug: str, version: int) -> Ed25519PrivateKey:
    master = settings.DEVICE_SIGNING_MASTER_KEY.encode()
    seed = hmac.new(master, f"ed25519:{lender_slug}:v{version}".encode(), hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def lender_public_key_b64(*, lender_slug: str, version: int) -> str:
    public = lender_signing_key(lender_slug=lender_slug, version=version).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


# 128 bits (22 characters) for a code that works once and within hours, hashed at rest: as
# unguessable as needed, and 10 bytes fewer in the QR code than 192 bits
ENROLLMENT_CODE_BYTES = 16


def enrollment_code(*, lender_slug: str, device_id: int, token_id: int, nonce: str) -> str:
    """The enrollment code of token row ``token_id`` of the lender's phone ``device_id``."""
    master = settings.DEVICE_SIGNING_MASTER_KEY.encode()
    message = f"enrollment-code:{lender_slug}:{device_id}:{token_id}:{nonce}".encode()
    digest = hmac.new(master, message, hashlib.sha256).digest()[:ENROLLMENT_CODE_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
