"""Print the current TOTP code for a base32 secret (for the demo's printed secrets).

make totp SECRET=JBSWY3DPEHPK3PXP
"""

import sys
from base64 import b32decode

from django_otp.oath import TOTP


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/totp.py BASE32_SECRET")
    secret = sys.argv[1].replace(" ", "").upper()
    try:
        key = b32decode(secret + "=" * (-len(secret) % 8))
    except ValueError as exc:
        raise SystemExit(f"not a base32 secret: {exc}") from exc
    print(f"{TOTP(key).token():06d}")


if __name__ == "__main__":
    main()
