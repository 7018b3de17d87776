import itertools

from stdnum import luhn

from apps.core.actor import Actor
from apps.devices.models import Device
from apps.devices.services import device_register

_serials = itertools.count(100000)


def valid_imei(prefix: str = "35209900") -> str:
    """A fresh 15-digit IMEI with a correct Luhn check digit."""
    body = f"{prefix}{next(_serials):06d}"
    return body + luhn.calc_check_digit(body)


def phone_registered(loan, *, imei: str, brand: str, model_name: str) -> Device:
    """The phone sold on ``loan``, registered and waiting for enrollment."""
    return device_register(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        imei=imei,
        brand=brand,
        model_name=model_name,
        actor=Actor.system(),
    )


def enrolled_phone(lender, *, fcm_token: str = "", signed_at=None):
    """An enrolled phone on a fresh loan: (device, device secret, lender public key)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from apps.devices.services import device_enroll, enrollment_token_mint
    from tests.collections.factories import signed_loan

    device = phone_registered(
        signed_loan(lender, signed_at=signed_at), imei=valid_imei(), brand="X", model_name="Y"
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
