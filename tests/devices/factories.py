import itertools

from stdnum import luhn

_serials = itertools.count(100000)


def valid_imei(prefix: str = "35209900") -> str:
    """A fresh 15-digit IMEI with a correct Luhn check digit."""
    body = f"{prefix}{next(_serials):06d}"
    return body + luhn.calc_check_digit(body)


def enrolled_phone(lender, *, fcm_token: str = "", signed_at=None):
    """An enrolled phone on a fresh loan: (device, device secret, lender public key)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from apps.core.actor import Actor
    from apps.devices.services import device_enroll, device_register, enrollment_token_mint
    from tests.collections.factories import signed_loan

    device = device_register(
        loan=signed_loan(lender, signed_at=signed_at),
        imei=valid_imei(),
        brand="X",
        model_name="Y",
        actor=Actor.system(),
    )
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    enrolled = device_enroll(
        token=token,
        imei=device.imei,
        serial="",
        model_name="",
        android_version="14",
        agent_version="1.0",
        fcm_token=fcm_token,
        agent_public_key=base64.b64encode(public).decode(),
        actor=Actor.system(),
    )
    enrolled.device.refresh_from_db()
    return enrolled.device, enrolled.device_secret, enrolled.lender_public_key
