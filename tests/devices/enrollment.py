"""The agent's enroll call, as a phone makes it when it scans its provisioning code."""

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ENROLL = "/api/agent/v1/enroll"


def agent_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def enroll(client, token: str, imei: str, **extra):
    body = {
        "token": token,
        "imei": imei,
        "serial": "R58N1234",
        "model": "Spark 20",
        "android_version": "14",
        "agent_version": "1.0.0",
        "fcm_token": "fcm-abc",
        "agent_public_key": agent_key(),
        **extra,
    }
    return client.post(ENROLL, data=body, content_type="application/json")
