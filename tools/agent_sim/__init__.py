"""The reference agent simulator: the phone's side of the agent API, for demos and tests.

It does what the Android agent does, with an in-memory phone instead of a
device-owner app: it reads the provisioning QR code (zxing-cpp), enrolls with
the code and the phone's IMEI, holds its own Ed25519 key pair, checks in on a
push nudge or every interval, verifies each desired state (signature by the
lender key it trusts, its own device id, a version higher than the one
applied, a lease not expired) and refuses anything else, applies it,
acknowledges it, and can raise events (a SIM change, a reboot, ...).

Its lock screen works without a network (``offline.py``): a payment token
(OpenPAYGO) typed by the customer lowers or releases the phone, an agent's
support PIN answers the challenge it shows, and the emergency grace lifts a
lock for a few hours; each is reported at the next check-in. ``agent.network
= False`` cuts the network: no request leaves the phone.

    python -m tools.agent_sim --qr enrollment.png --imei 352099001000005 --keep phone.json
    python -m tools.agent_sim --keep phone.json --token 123456789
    python -m tools.agent_sim --help

It imports nothing from the server: it is a client of the API, and its
signature check is its own.
"""

from tools.agent_sim.agent import Agent, AgentStopped
from tools.agent_sim.offline import LockScreen, OfflineTerms, pin_challenge, support_pin
from tools.agent_sim.phone import Phone, Refused, StateVerifier

__all__ = [
    "Agent",
    "AgentStopped",
    "LockScreen",
    "OfflineTerms",
    "Phone",
    "Refused",
    "StateVerifier",
    "pin_challenge",
    "support_pin",
]
