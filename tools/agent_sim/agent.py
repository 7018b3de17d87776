"""The agent: enrollment from the QR code, check-in, verify-apply-ack, events, and the lock
screen's offline unlock (tokens, support PIN, emergency grace) with its reports."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tools.agent_sim.offline import LockScreen, OfflineTerms
from tools.agent_sim.phone import Phone, Refused, StateVerifier, public_key

logger = logging.getLogger("agent_sim")

EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
AGENT_VERSION = "sim-1.0"


# Refusals the agent reports to the server with an error ack: a state the lender
# signed that it cannot apply. A forged, unsigned or unknown-key one did not
# come from the lender as far as the phone can tell, and a replay is an old
# state the phone already applied.
REPORTED = frozenset({"expired", "wrong_device"})


class AgentStopped(Exception):
    """The server says this phone is released or unknown: the agent has nothing left to do."""


def read_qr(png: bytes | str | Path) -> dict[str, Any]:
    """The provisioning payload in a QR code image, decoded with zxing-cpp."""
    import zxingcpp
    from PIL import Image

    source = io.BytesIO(png) if isinstance(png, bytes) else png
    codes = zxingcpp.read_barcodes(Image.open(source))
    if not codes:
        raise ValueError("no QR code in the image")
    return json.loads(codes[0].text)  # type: ignore[no-any-return]  # JSON object by contract


class Agent:
    """One simulated phone talking to the agent API over HTTP."""

    def __init__(
        self,
        *,
        server: str,
        token: str,
        imei: str,
        fcm_token: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        session: requests.Session | None = None,
    ) -> None:
        self.server = server if server.endswith("/") else server + "/"
        self.token, self.imei = token, imei
        self.fcm_token = fcm_token or f"sim-{imei}"
        self.clock = clock
        self.http = session or requests.Session()
        self.key = Ed25519PrivateKey.generate()  # the agent's own key pair
        self.phone = Phone()
        self.iccid = f"8925401{imei[-12:]}"
        self.device_id: int | None = None
        self.secret = ""
        self.verifier: StateVerifier | None = None
        self.refusals: list[str] = []
        # With the network cut, every call to the server fails as a connection error before
        # any request is made; requests_sent counts the ones that were.
        self.network = True
        self.requests_sent = 0
        self.stopped = threading.Event()
        self.nudged = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_qr(
        cls, png: bytes | str | Path, *, imei: str, server: str | None = None, **kwargs: Any
    ) -> Agent:
        """The agent a scan of the QR code sets up; ``server`` overrides the code's address."""
        extras = read_qr(png)[EXTRAS]
        return cls(server=server or extras["server"], token=extras["token"], imei=imei, **kwargs)

    # --- HTTP ---------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], *, auth: bool = True) -> requests.Response:
        if not self.network:
            raise requests.ConnectionError(f"no network: {path} not sent")
        headers = {"Authorization": f"Device {self.device_id}:{self.secret}"} if auth else {}
        self.requests_sent += 1
        response = self.http.post(self.server + path, json=body, headers=headers, timeout=10)
        if response.status_code in (401, 410) and auth:
            self.stopped.set()
            raise AgentStopped(response.json().get("code", str(response.status_code)))
        return response

    def enroll(self) -> int:
        own = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        response = self._post(
            "enroll",
            {
                "token": self.token,
                "imei": self.imei,
                "serial": f"SIM{self.imei[-6:]}",
                "model": "Simulated",
                "android_version": "14",
                "agent_version": AGENT_VERSION,
                "fcm_token": self.fcm_token,
                "agent_public_key": base64.b64encode(own).decode(),
            },
            auth=False,
        )
        if response.status_code != 201:
            raise RuntimeError(f"enrollment refused: {response.status_code} {response.text}")
        body = response.json()
        self.device_id, self.secret = body["device_id"], body["device_secret"]
        self.verifier = StateVerifier(
            device_id=body["device_id"],
            keys={body["key_version"]: public_key(body["lender_public_key"])},
        )
        if body.get("offline"):  # handed once; a server without offline unlock sends none
            self.phone.offline = LockScreen(terms=OfflineTerms.from_json(body["offline"]))
        logger.info("enrolled device=%s", self.device_id)
        return self.device_id

    def check_in(self) -> str | None:
        """Post the queued reports, then check in; apply and ack a newer state. Returns what
        happened, or None if nothing new."""
        with self._lock:
            self._post_reports()
            response = self._post(
                "check-in",
                {
                    "version": self.phone.version,
                    "agent_version": AGENT_VERSION,
                    "battery": 80,
                    "iccid_sha256": hashlib.sha256(self.iccid.encode()).hexdigest(),
                },
            )
            response.raise_for_status()
            body = response.json()
            self._show(body.get("notices") or [])
            state = body["state"]
            return None if state is None else self.receive(state)

    def _show(self, notices: list[dict[str, Any]]) -> None:
        """Show the notices (the phone's notification shade), then acknowledge them."""
        fresh = [n for n in notices if n["id"] not in self.phone.notice_ids]
        for notice in fresh:
            self.phone.notices.append(notice["body"])
            self.phone.notice_ids.add(notice["id"])
            logger.info("device=%s notice: %s", self.device_id, notice["body"])
        if notices:
            self._post("notices/ack", {"ids": [n["id"] for n in notices]}).raise_for_status()

    def receive(self, state: Any) -> str:
        """Verify a state and apply and ack it, or refuse it (acked as an error when it names
        a version this phone was issued). Returns the level applied or ``refused:<reason>``."""
        if self.verifier is None:
            raise RuntimeError("enroll first")
        try:
            document = self.verifier.check(
                state, applied_version=self.phone.version, now=self.clock()
            )
        except Refused as refusal:
            self.refusals.append(refusal.reason)
            logger.warning("refused a state: %s", refusal.reason)
            version = (
                (state.get("document") or {}).get("version") if isinstance(state, dict) else None
            )
            if isinstance(version, int) and version > 0 and refusal.reason in REPORTED:
                self._post("ack", {"version": version, "error_code": refusal.reason})
            return f"refused:{refusal.reason}"
        self.phone.apply(document)
        self.verifier.trust(document)
        # a lost ack is not lost for good: the next check-in reports this version
        self._post("ack", {"version": document["version"]}).raise_for_status()
        logger.info("device=%s applied %s", self.device_id, self.phone.describe())
        if self.phone.released:
            self.stopped.set()
        return document["level"]

    def _post_reports(self) -> None:
        """Post what the lock screen did offline, oldest first. An answer in 2xx takes a report
        off the queue (the server stores each event_id once); anything else leaves it for the
        next check-in. A network failure stops here: the check-in would fail too."""
        screen = self.phone.offline
        if screen is None:
            return
        for event in list(screen.reports):
            response = self._post("events", event)
            if 200 <= response.status_code < 300:
                screen.reports.remove(event)
            else:
                logger.warning("report %s kept: %s", event["kind"], response.status_code)

    def report(self, kind: str, **detail: Any) -> dict[str, Any]:
        body = {
            "event_id": uuid.uuid4().hex,
            "kind": kind,
            "occurred_at": self.clock().isoformat(),
            "detail": detail,
        }
        response = self._post("events", body)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]  # a JSON object by the API's contract

    def swap_sim(self, iccid: str) -> None:
        """A new SIM card: reported as an event, and its hash goes with the next check-in."""
        self.iccid = iccid
        self.report("sim_changed", slot=1)

    # --- the lock screen, offline: no request is made ----------------------------------

    def type_token(self, digits: str) -> str:
        """The customer types a payment token: the level in force after it, or
        ``refused:used|invalid|wait`` (``refused:unavailable``: no offline terms)."""
        with self._lock:
            return self.phone.type_token(digits, self.clock())

    def lock_screen_challenge(self) -> str | None:
        """The 6-digit challenge the lock screen shows (None: no offline terms)."""
        with self._lock:
            return self.phone.lock_screen_challenge()

    def enter_pin(self, pin: str) -> str:
        """An agent's support PIN for the challenge shown: the level in force after it, or
        ``refused:invalid|wait`` (``refused:unavailable``: no offline terms)."""
        with self._lock:
            return self.phone.enter_pin(pin, self.clock())

    def emergency_unlock(self) -> bool:
        """The customer opens the emergency grace: whether it opened."""
        with self._lock:
            return self.phone.emergency_unlock(self.clock())

    def effective_level(self, now: datetime | None = None) -> str:
        """The level in force at ``now`` (default: the agent's clock)."""
        return self.phone.effective_level(self.clock() if now is None else now)

    def describe(self) -> str:
        return self.phone.describe(self.clock())

    # --- what the agent keeps on the phone ---------------------------------------------

    def save(self, path: Path) -> None:
        """Credentials, trusted key, applied state and the lock screen's bookkeeping (counter,
        wrong entries, windows, queued reports): what survives a reboot of the phone."""
        if self.verifier is None:
            raise RuntimeError("enroll first")
        keys = {
            str(version): base64.b64encode(
                key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            ).decode()
            for version, key in self.verifier.keys.items()
        }
        with self._lock:  # the lock screen may be changing it on another thread
            saved = json.dumps(
                {
                    "server": self.server,
                    "imei": self.imei,
                    "fcm_token": self.fcm_token,
                    "device_id": self.device_id,
                    "secret": self.secret,
                    "lender_keys": keys,
                    "version": self.phone.version,
                    "level": self.phone.level,
                    "phone": self.phone.to_json(),
                }
            )
        # created readable by its owner only, before the secret is written into it
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(saved)

    @classmethod
    def load(cls, path: Path, *, server: str | None = None, **kwargs: Any) -> Agent:
        """The agent saved at ``path``; ``server`` overrides the address it saved."""
        saved = json.loads(path.read_text())
        agent = cls(
            server=server or saved["server"],
            token="",
            imei=saved["imei"],
            fcm_token=saved["fcm_token"],
            **kwargs,
        )
        agent.device_id, agent.secret = saved["device_id"], saved["secret"]
        agent.verifier = StateVerifier(
            device_id=saved["device_id"],
            keys={int(v): public_key(k) for v, k in saved["lender_keys"].items()},
        )
        if "phone" in saved:
            agent.phone = Phone.from_json(saved["phone"])
        else:  # saved before the phone kept more than its version and level
            agent.phone.version, agent.phone.level = saved["version"], saved["level"]
        return agent

    # --- running ------------------------------------------------------------------------

    def on_nudge(self, data: dict[str, str]) -> None:
        """A push arrived (its data says only "sync"): check in now."""
        self.nudged.set()

    def run(self, *, interval: float, keep: Path | None = None) -> None:
        """Check in at once, then on every nudge or every ``interval`` seconds, until stopped.

        Offline (no network, or the server unreachable), the lease and the lock screen's
        windows decide. A phone released offline (DISABLE_PAYG) keeps checking in until the
        server confirms: it hands the released state, or answers 401/410. With ``keep``, the
        agent saves itself there after each round."""
        shown = self.effective_level()
        while not self.stopped.is_set():
            try:
                self.check_in()
            except AgentStopped:
                break
            except requests.RequestException:
                with self._lock:
                    self.phone.lease_lapse(self.clock())  # offline: the lease decides
            if (level := self.effective_level()) != shown:
                logger.info("device=%s in force: %s", self.device_id, self.describe())
                shown = level
            if keep is not None:
                self.save(keep)
            self.nudged.wait(interval)
            self.nudged.clear()
