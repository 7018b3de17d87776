"""The reference agent's lock screen without a network: payment tokens, the support PIN, the
emergency grace, and the reports it posts once it is back online.

Phone side only: the server is played by a stub HTTP session (the phone's own HTTP) that
answers the enroll with an ``offline`` block made here, with a random secret, and hands
states signed here. Tokens come from the OpenPAYGO library's encoder; PINs are computed
from the contract's formula, written out again below.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from openpaygo import TokenType, generate_token

from tools.agent_sim import Agent, AgentStopped
from tools.agent_sim.__main__ import main
from tools.agent_sim.phone import canonical

NAIROBI = ZoneInfo("Africa/Nairobi")
EPOCH = date(2026, 12, 6)
LADDER = [[1, "reminder"], [3, "wallpaper"], [7, "alarm"], [14, "block_apps"], [30, "lock"]]
GRACE_DAYS = 3
DEVICE_ID = 7
SERVER = "http://phone.test/api/agent/v1/"
# 23:00 in Nairobi on 10 January 2027: an hour before the local date turns
START = datetime(2027, 1, 10, 20, 0, tzinfo=UTC)
TODAY = date(2027, 1, 10)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def reply(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return response


class StubServer:
    """The agent API as the phone sees it, over a requests.Session-like ``post``."""

    def __init__(self, offline: dict[str, Any] | None) -> None:
        self.offline = offline
        self.key = Ed25519PrivateKey.generate()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.states: list[dict[str, Any]] = []  # handed one per check-in
        self.events_status: list[int] = []  # answers to the next event posts (default 200)
        self.gone = False

    def post(self, url: str, *, json: dict[str, Any], headers: Any, timeout: float) -> Any:
        path = url.removeprefix(SERVER)
        self.calls.append((path, json))
        if self.gone and path != "enroll":
            return reply(410, {"code": "device_released", "message": "", "extra": {}})
        if path == "enroll":
            public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            body = {
                "device_id": DEVICE_ID,
                "device_secret": "s3cret",
                "key_version": 1,
                "lender_public_key": base64.b64encode(public).decode(),
            }
            return reply(201, body | ({"offline": self.offline} if self.offline else {}))
        if path == "check-in":
            return reply(200, {"state": self.states.pop(0) if self.states else None, "notices": []})
        if path == "ack":
            return reply(200, {"acked_version": json["version"]})
        if path == "events":
            status = self.events_status.pop(0) if self.events_status else 200
            return reply(status, {"event_id": json["event_id"], "stored": True})
        return reply(404, {})

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        signature = self.key.sign(canonical(document))
        return {
            "document": document,
            "signature": base64.b64encode(signature).decode(),
            "key_version": 1,
        }

    def hand(self, version: int, level: str, *, at: datetime, **extra: Any) -> None:
        """Queue the state the next check-in gets (lease of a week unless ``valid_until``)."""
        document = {
            "device": DEVICE_ID,
            "version": version,
            "key_version": 1,
            "level": level,
            "valid_until": (at + timedelta(days=7)).isoformat(),
            "fallback_level": "lock",
            "emergency_grace_hours": 24,
            "support_pin_hours": 24,
            "token_count": 0,
        } | extra
        self.states.append(self.sign(document))

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]

    def events(self) -> list[dict[str, Any]]:
        return [body for path, body in self.calls if path == "events"]


def offline_block(**overrides: Any) -> dict[str, Any]:
    return {
        "token_secret": secrets.token_hex(16),
        "starting_code": secrets.randbelow(900_000_000) + 100_000_000,
        "epoch": EPOCH.isoformat(),
        "grace_days": GRACE_DAYS,
        "ladder": LADDER,
        "timezone": "Africa/Nairobi",
        "pin_secret": secrets.token_hex(32),
    } | overrides


def token(block: dict[str, Any], *, count: int, paid_until: date | None = None) -> tuple[int, str]:
    """The server's next token after ``count``: SET_TIME to ``paid_until``, else DISABLE_PAYG."""
    if paid_until is None:
        kind, value = TokenType.DISABLE_PAYG, None
    else:
        kind, value = TokenType.SET_TIME, (paid_until - date.fromisoformat(block["epoch"])).days
    issued: tuple[int, str] = generate_token(
        secret_key=block["token_secret"],
        count=count,
        value=value,
        token_type=kind,
        starting_code=block["starting_code"],
    )
    return issued


def truncated_hmac(secret: str, message: bytes, digits: int) -> str:
    number = int.from_bytes(hmac.new(bytes.fromhex(secret), message, hashlib.sha256).digest()[:4])
    return str(number % 10**digits).zfill(digits)


def challenge_for(block: dict[str, Any], counter: int) -> str:
    return truncated_hmac(block["pin_secret"], f"challenge:{counter}".encode(), 6)


def pin_for(block: dict[str, Any], challenge: str) -> str:
    return truncated_hmac(block["pin_secret"], f"pin:{challenge}".encode(), 8)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def block() -> dict[str, Any]:
    return offline_block()


@pytest.fixture
def server(block) -> StubServer:
    return StubServer(block)


def locked_agent(server: StubServer, clock: Clock, level: str = "lock", **state: Any) -> Agent:
    """An enrolled agent that applied a lock (v1) and then lost its network."""
    agent = Agent(server=SERVER, token="t", imei="352099001000005", clock=clock, session=server)
    agent.enroll()
    server.hand(1, level, at=clock(), **state)
    assert agent.check_in() == level
    agent.network = False
    return agent


@pytest.fixture
def agent(server, clock) -> Agent:
    return locked_agent(
        server,
        clock,
        lock_screen_text="Pay to unlock.",
        blocked_categories=["social"],
        alarm_times=["09:00"],
        wallpaper_text="Payment due.",
    )


def test_a_set_time_token_lowers_a_lock_and_the_ladder_climbs_back_as_days_pass(
    agent, block, clock
) -> None:
    paid_until = TODAY + timedelta(days=10)
    _, digits = token(block, count=0, paid_until=paid_until)
    assert agent.type_token(digits) == "normal"
    assert agent.phone.in_force(clock()) == {
        "level": "normal",
        "wallpaper_text": "",
        "alarm_times": [],
        "blocked_packages": [],
        "blocked_categories": [],
        "lock_screen_text": "",
    }
    # local dates after the date paid until: the grace days, then the ladder (days late)
    for late, level in [(3, "normal"), (4, "wallpaper"), (7, "alarm"), (14, "block_apps")]:
        clock.now = datetime.combine(
            paid_until + timedelta(days=late), datetime.min.time(), NAIROBI
        )
        assert agent.effective_level() == level, late
    # lowered to block_apps: its blocked apps and what is below it, never the lock's screen
    shown = agent.phone.in_force(clock())
    assert shown["blocked_categories"] == ["social"]
    assert shown["alarm_times"] == ["09:00"]
    assert shown["lock_screen_text"] == ""
    clock.now = datetime.combine(paid_until + timedelta(days=30), datetime.min.time(), NAIROBI)
    assert agent.effective_level() == "lock"
    assert agent.phone.in_force(clock())["lock_screen_text"] == "Pay to unlock."


def test_the_token_outlives_the_lease_while_offline(server, block, clock) -> None:
    lease = (START + timedelta(days=1)).isoformat()
    agent = locked_agent(server, clock, "alarm", valid_until=lease)
    _, digits = token(block, count=0, paid_until=TODAY + timedelta(days=20))
    assert agent.type_token(digits) == "normal"
    clock.advance(days=5)
    assert agent.phone.lease_lapse(clock())  # past the lease: the fallback is a lock
    assert agent.phone.level == "lock"
    assert agent.effective_level() == "normal"
    assert "token: paid until 2027-01-30" in agent.describe()


def test_a_disable_payg_token_releases_the_phone_for_good(agent, block, clock) -> None:
    _, digits = token(block, count=0)
    assert agent.type_token(digits) == "released"
    clock.advance(days=400)
    assert agent.effective_level() == "released"
    assert agent.phone.in_force(clock())["blocked_categories"] == []
    assert "released offline" in agent.describe()
    assert not agent.phone.rings_at(clock())


def test_a_replayed_token_is_refused_as_used(agent, block) -> None:
    _, digits = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    assert agent.type_token(digits) == "normal"
    assert agent.type_token(digits) == "refused:used"


def test_a_token_for_another_phone_is_refused_as_invalid(agent, block) -> None:
    other = offline_block()
    _, digits = token(other, count=0, paid_until=TODAY + timedelta(days=10))
    assert agent.type_token(digits) == "refused:invalid"
    assert agent.type_token("12345") == "refused:invalid"  # not 9 digits
    _, sync = generate_token(  # a kind this phone does not apply
        secret_key=block["token_secret"],
        count=0,
        token_type=TokenType.COUNTER_SYNC,
        starting_code=block["starting_code"],
    )
    assert agent.type_token(sync) == "refused:invalid"
    assert agent.effective_level() == "lock"
    assert agent.phone.offline.reports == []


def test_an_add_time_token_adds_days_to_the_date_paid_until(agent, block, clock) -> None:
    count, digits = token(block, count=0, paid_until=TODAY - timedelta(days=10))
    assert agent.type_token(digits) == "alarm"  # 10 days late: 7 and over
    added_count, added = generate_token(
        secret_key=block["token_secret"],
        count=count,
        value=6,
        token_type=TokenType.ADD_TIME,
        starting_code=block["starting_code"],
    )
    assert agent.type_token(added) == "wallpaper"  # now 4 days late: 3 and over
    assert agent.phone.offline.override.paid_until == TODAY - timedelta(days=4)
    assert agent.phone.offline.reports[-1]["detail"]["type"] == "add_time"
    assert agent.phone.offline.last_count == added_count


def test_the_sixth_entry_of_a_local_day_waits_even_a_right_one(agent, block, clock) -> None:
    _, digits = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    wrong = [agent.type_token(f"{n:09d}") for n in range(4)]
    wrong.append(agent.enter_pin("00000000"))  # a wrong PIN is a wrong entry too
    assert set(wrong) == {"refused:invalid"}
    assert agent.type_token(digits) == "refused:wait"  # not even decoded
    assert agent.enter_pin(pin_for(block, agent.lock_screen_challenge())) == "refused:wait"
    assert agent.effective_level() == "lock"
    clock.advance(minutes=59)  # 23:59 in Nairobi
    assert agent.type_token(digits) == "refused:wait"
    clock.advance(minutes=2)  # 00:01 the next local date, the same date in UTC
    assert clock().date() == START.date()
    assert agent.type_token(digits) == "normal"


def test_the_counter_and_the_used_tokens_survive_a_restart(agent, block, clock, tmp_path) -> None:
    _, first = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    assert agent.type_token(first) == "normal"
    for n in range(5):
        agent.type_token(f"{n:09d}")
    kept = tmp_path / "phone.json"
    agent.save(kept)
    assert kept.stat().st_mode & 0o077 == 0
    again = Agent.load(kept, clock=clock, session=agent.http)
    again.network = False
    assert again.effective_level() == "normal"  # the token is still in force
    assert again.type_token(first) == "refused:wait"  # the wrong entries were kept too
    clock.advance(days=1)
    assert again.type_token(first) == "refused:used"
    count, later = token(block, count=1, paid_until=TODAY + timedelta(days=40))
    assert again.type_token(later) == "normal"
    assert again.phone.offline.last_count == count


def test_a_state_as_new_as_the_token_drops_it_and_spends_older_tokens(
    agent, server, block, clock
) -> None:
    count, typed = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    later_count, never_typed = token(block, count=count, paid_until=TODAY + timedelta(days=20))
    assert agent.type_token(typed) == "normal"
    agent.network = True
    server.hand(2, "lock", at=clock(), token_count=count - 1)  # older than the token
    assert agent.check_in() == "lock"
    assert agent.effective_level() == "normal"  # a stale state does not re-lock
    server.hand(3, "lock", at=clock(), token_count=later_count)  # the books say lock
    assert agent.check_in() == "lock"
    assert agent.effective_level() == "lock"
    assert agent.phone.offline.override is None
    assert agent.type_token(typed) == "refused:used"
    assert agent.type_token(never_typed) == "refused:used"  # the state is newer than it


def test_the_support_pin_works_once_for_its_challenge(agent, block, clock) -> None:
    challenge = agent.lock_screen_challenge()
    assert challenge == challenge_for(block, 0)
    pin = pin_for(block, challenge)
    assert agent.enter_pin(pin) == "normal"
    assert agent.lock_screen_challenge() == challenge_for(block, 1) != challenge
    assert agent.enter_pin(pin) == "refused:invalid"
    clock.advance(hours=23, minutes=59)
    assert agent.effective_level() == "normal"
    clock.advance(minutes=1)  # the window of support_pin_hours closed by itself
    assert agent.effective_level() == "lock"
    assert agent.enter_pin(pin_for(block, challenge_for(block, 1))) == "normal"


def test_the_emergency_grace_opens_once_per_episode_and_ends_by_itself(
    agent, server, clock
) -> None:
    assert agent.emergency_unlock()
    assert agent.effective_level() == "block_apps"
    assert agent.phone.in_force(clock())["lock_screen_text"] == ""
    assert not agent.emergency_unlock()  # open already, and this episode used it
    clock.advance(hours=24)
    assert agent.effective_level() == "lock"  # back to the state's level by itself
    assert not agent.emergency_unlock()
    # a new episode (unlocked, then locked again) within 30 days: still no grace
    agent.network = True
    server.hand(2, "normal", at=clock())
    server.hand(3, "lock", at=clock())
    agent.check_in()
    agent.check_in()
    assert not agent.emergency_unlock()
    clock.advance(days=29)
    assert not agent.emergency_unlock()
    clock.advance(days=1)  # more than 30 days since the last one started, a new episode
    assert agent.emergency_unlock()
    assert agent.effective_level() == "block_apps"


def test_the_emergency_grace_needs_a_lock_and_the_lenders_hours(server, clock) -> None:
    agent = locked_agent(server, clock, emergency_grace_hours=0)
    assert not agent.emergency_unlock()  # the lender turned it off
    agent.network = True
    server.hand(2, "block_apps", at=clock())
    agent.check_in()
    assert not agent.emergency_unlock()  # not locked
    assert agent.phone.offline.reports == []


def test_no_request_leaves_the_phone_while_the_network_is_cut(agent, server, block, clock) -> None:
    sent, calls = agent.requests_sent, len(server.calls)
    with pytest.raises(requests.ConnectionError):
        agent.check_in()
    with pytest.raises(requests.ConnectionError):
        agent.report("reboot")
    _, digits = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    assert agent.type_token(digits) == "normal"
    agent.enter_pin(pin_for(block, agent.lock_screen_challenge()))
    # run() keeps going offline: the lease ends and its fallback is applied
    agent.phone.valid_until = clock() + timedelta(minutes=1)
    agent.phone.level = "block_apps"
    clock.advance(minutes=2)
    thread = threading.Thread(target=lambda: agent.run(interval=0.01), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while agent.phone.level != "lock" and time.monotonic() < deadline:
        time.sleep(0.01)
    agent.stopped.set()
    agent.nudged.set()
    thread.join(timeout=5)
    assert agent.phone.level == "lock"
    assert (agent.requests_sent, len(server.calls)) == (sent, calls)


def test_what_the_phone_did_offline_is_reported_before_its_next_check_in(
    agent, server, block, clock
) -> None:
    grace_at = clock()
    assert agent.emergency_unlock()
    clock.advance(hours=1)
    challenge = agent.lock_screen_challenge()
    assert agent.enter_pin(pin_for(block, challenge)) == "normal"
    clock.advance(hours=1)
    token_at = clock()
    count, digits = token(block, count=0, paid_until=TODAY + timedelta(days=10))
    assert agent.type_token(digits) == "normal"
    clock.advance(hours=5)  # the network comes back later
    agent.network = True
    before = len(server.calls)
    server.events_status = [200, 503]  # the PIN's report fails: it stays queued
    agent.check_in()
    assert server.paths()[before:] == ["events", "events", "events", "check-in"]
    grace_event, pin_event, token_event = server.events()
    assert grace_event["kind"] == "emergency_grace_used"
    assert grace_event["occurred_at"] == grace_at.isoformat()  # when it happened
    assert grace_event["detail"] == {
        "started_at": grace_at.isoformat(),
        "ends_at": (grace_at + timedelta(hours=24)).isoformat(),
    }
    assert pin_event["kind"] == "support_pin_used"
    assert pin_event["detail"] == {
        "challenge": challenge,
        "applied_at": (grace_at + timedelta(hours=1)).isoformat(),
    }
    assert token_event["kind"] == "offline_token_applied"
    assert token_event["detail"] == {
        "count": count,
        "type": "set_time",
        "value": (TODAY + timedelta(days=10) - EPOCH).days,
        "applied_at": token_at.isoformat(),
    }
    assert len({e["event_id"] for e in server.events()}) == 3
    assert [e["kind"] for e in agent.phone.offline.reports] == ["support_pin_used"]
    agent.check_in()  # the same event, the same id: the server stores it once
    assert server.events()[-1] == pin_event
    assert agent.phone.offline.reports == []
    agent.check_in()
    assert server.paths()[-2:] == ["check-in", "check-in"]  # nothing left to report


def test_a_phone_released_offline_checks_in_until_the_server_confirms(
    agent, server, block, clock
) -> None:
    count, digits = token(block, count=0)
    assert agent.type_token(digits) == "released"
    agent.network = True
    assert agent.check_in() is None  # the server has not caught up yet
    assert not agent.stopped.is_set()
    assert server.events()[0]["detail"] == {
        "count": count,
        "type": "disable_payg",
        "value": None,
        "applied_at": START.isoformat(),
    }
    server.hand(2, "released", at=clock(), token_count=count)
    thread = threading.Thread(target=lambda: agent.run(interval=0.01), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()  # run() ended once the released state was applied
    assert agent.stopped.is_set()
    assert server.calls[-1] == ("ack", {"version": 2})
    assert agent.describe() == "released: the agent removed itself"


def test_a_phone_released_offline_stops_when_the_server_says_it_is_gone(
    agent, server, block
) -> None:
    _, digits = token(block, count=0)
    agent.type_token(digits)
    agent.network = True
    server.gone = True
    with pytest.raises(AgentStopped):
        agent.check_in()
    assert agent.stopped.is_set()


def test_a_server_without_offline_unlock_leaves_the_lock_screen_as_it_was(clock) -> None:
    server = StubServer(None)
    agent = locked_agent(server, clock)
    assert agent.phone.offline is None
    assert agent.type_token("123456789") == "refused:unavailable"
    assert agent.lock_screen_challenge() is None
    assert not agent.emergency_unlock()
    assert agent.effective_level() == "lock"
    assert agent.describe() == "v1 lock"


def test_a_phone_saved_before_offline_unlock_resumes(server, clock, tmp_path) -> None:
    agent = locked_agent(server, clock)
    kept = tmp_path / "phone.json"
    agent.save(kept)
    saved = json.loads(kept.read_text())
    del saved["phone"]
    kept.write_text(json.dumps(saved))
    again = Agent.load(kept, clock=clock, session=server)
    assert (again.phone.version, again.effective_level()) == (1, "lock")


def test_the_command_line_types_on_the_lock_screen_of_a_kept_phone(
    server, block, tmp_path, capsys
) -> None:
    # the command line reads the real clock: the loan is paid until next month
    today = datetime.now(UTC).astimezone(NAIROBI).date()
    agent = locked_agent(server, Clock(datetime.now(UTC)))
    kept = tmp_path / "phone.json"
    agent.save(kept)
    # the saved address answers nothing: the lock screen never calls it
    _, digits = token(block, count=0, paid_until=today + timedelta(days=30))

    assert main(["--keep", str(kept), "--token", digits]) == 0
    result, described = capsys.readouterr().out.splitlines()
    assert result == "normal"
    assert described.startswith("v1 lock, in force normal (token: paid until")
    assert main(["--keep", str(kept), "--token", digits]) == 1  # the counter was saved
    assert capsys.readouterr().out.splitlines()[0] == "refused:used"

    assert main(["--keep", str(kept), "--challenge"]) == 0
    challenge = capsys.readouterr().out.splitlines()[0]
    assert challenge == challenge_for(block, 0)
    assert main(["--keep", str(kept), "--pin", pin_for(block, challenge), "--challenge"]) == 0
    shown, result, _ = capsys.readouterr().out.splitlines()
    assert (shown, result) == (challenge, "normal")  # the challenge before the PIN
    assert main(["--keep", str(kept), "--emergency"]) == 1  # not locked: no grace
    assert capsys.readouterr().out.splitlines()[0] == "refused"
    reports = json.loads(kept.read_text())["phone"]["offline"]["reports"]
    assert [r["kind"] for r in reports] == ["offline_token_applied", "support_pin_used"]
    assert server.paths() == ["enroll", "check-in", "ack"]  # nothing since

    # run once with the network cut: the first call (the queued reports) is not sent
    assert main(["--keep", str(kept), "--once", "--offline"]) == 0
    result, described = capsys.readouterr().out.splitlines()
    assert result == "offline: no network: events not sent"
    assert described.startswith("v1 lock, in force normal")
    assert len(json.loads(kept.read_text())["phone"]["offline"]["reports"]) == 2


def test_the_command_line_lock_screen_needs_a_kept_phone(tmp_path) -> None:
    with pytest.raises(SystemExit):
        main(["--token", "123456789"])
    with pytest.raises(SystemExit):
        main(["--keep", str(tmp_path / "none.json"), "--challenge"])
    with pytest.raises(SystemExit):
        main(["--qr", str(tmp_path / "code.png"), "--imei", "352099001000005", "--offline"])
