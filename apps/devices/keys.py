"""Each lender's Ed25519 signing key, derived from one master key in the environment.

Nothing secret is stored in the database: the 32-byte seed of a lender's key
version is HMAC-SHA256(master, "ed25519:<lender slug>:v<version>"). Rotating a
lender's key is moving to the next version (``lender_signing_key_rotate``):
each phone learns the new public key from a state signed by the old one.
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
