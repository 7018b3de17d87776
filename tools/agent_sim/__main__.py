"""python -m tools.agent_sim --qr CODE.png --imei IMEI [--keep FILE] [--server URL] [--interval S]
                          [--once] [--offline]
python -m tools.agent_sim --keep FILE [--challenge] [--pin PIN] [--token DIGITS] [--emergency]

Enrolls from the QR image, then checks in every interval (the demo's phones
have no FCM client, so the interval is what wakes them). With --keep, the
agent saves its credentials and state there and resumes from them next time
instead of enrolling again. --server overrides the agent address of the QR
code or of the saved agent (the demo moved to another port, for example).
--offline runs with the network cut: no request leaves the phone, the lease
and the lock screen decide.

The lock screen of a kept phone (--keep), offline, with no request made:
--challenge prints the 6-digit challenge an agent types in the back office,
--pin types the support PIN the agent reads out, --token types a payment
token, --emergency opens the emergency grace. Each prints its result on a
line of its own (the level in force, ``refused:<reason>``, or for
--emergency ``opened``/``refused``), then the phone is described and saved.
The exit status is 1 when an entry was refused.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

import requests

from tools.agent_sim.agent import Agent, AgentStopped


def lock_screen(agent: Agent, args: argparse.Namespace) -> int:
    """What the customer (or the agent on the phone line) does on the lock screen."""
    refused = False
    if args.challenge:
        print(agent.lock_screen_challenge() or "refused:unavailable")
    for entry, typed in ((agent.enter_pin, args.pin), (agent.type_token, args.token)):
        if typed is not None:
            result = entry(typed)
            refused = refused or result.startswith("refused:")
            print(result)
    if args.emergency:
        opened = agent.emergency_unlock()
        refused = refused or not opened
        print("opened" if opened else "refused")
    print(agent.describe())
    agent.save(args.keep)
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.agent_sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--qr", type=Path, help="PNG of the provisioning QR code")
    parser.add_argument("--imei", help="the IMEI of the phone that was sold")
    parser.add_argument("--keep", type=Path, help="file the agent saves itself to and resumes from")
    parser.add_argument(
        "--server", help="the agent API's address, instead of the QR's or the saved one"
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between check-ins")
    parser.add_argument("--once", action="store_true", help="enroll, check in once, and exit")
    parser.add_argument(
        "--offline", action="store_true", help="run with the network cut: no request is made"
    )
    screen = parser.add_argument_group("the lock screen of a kept phone (offline)")
    screen.add_argument("--challenge", action="store_true", help="print the PIN challenge")
    screen.add_argument("--pin", metavar="PIN", help="type a support PIN")
    screen.add_argument("--token", metavar="DIGITS", help="type a payment token")
    screen.add_argument("--emergency", action="store_true", help="open the emergency grace")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(message)s")
    on_lock_screen = args.challenge or args.emergency or args.pin is not None
    if on_lock_screen or args.token is not None:
        if not (args.keep and args.keep.exists()):
            parser.error("the lock screen needs --keep naming a saved agent")
        agent = Agent.load(args.keep, server=args.server)
        agent.network = False  # what the lock screen does needs no server
        return lock_screen(agent, args)
    if args.keep and args.keep.exists():
        agent = Agent.load(args.keep, server=args.server)
    elif args.offline:
        parser.error("enrolling needs the network: --offline needs --keep naming a saved agent")
    elif args.qr and args.imei:
        agent = Agent.from_qr(args.qr, imei=args.imei, server=args.server)
        agent.enroll()
        if args.keep:
            agent.save(args.keep)
    else:
        parser.error("--qr and --imei are needed to enroll (or --keep naming a saved agent)")
    agent.network = not args.offline
    if args.once:
        try:
            agent.check_in()
        except AgentStopped as stopped:
            print(f"stopped: {stopped}")
        except requests.ConnectionError as failed:
            if not args.offline:
                raise
            agent.phone.lease_lapse(agent.clock())  # offline: the lease decides
            print(f"offline: {failed}")
        print(agent.describe())
        if args.keep:
            agent.save(args.keep)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        agent.run(interval=args.interval, keep=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
