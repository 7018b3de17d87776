"""python -m tools.agent_sim --qr CODE.png --imei IMEI [--keep FILE] [--server URL] [--interval S] [--once]

Enrolls from the QR image, then checks in every interval (the demo's phones
have no FCM client, so the interval is what wakes them). With --keep, the
agent saves its credentials and state there and resumes from them next time
instead of enrolling again. --server overrides the agent address of the QR
code or of the saved agent (the demo moved to another port, for example).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from tools.agent_sim.agent import Agent, AgentStopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.agent_sim", description=__doc__)
    parser.add_argument("--qr", type=Path, help="PNG of the provisioning QR code")
    parser.add_argument("--imei", help="the IMEI of the phone that was sold")
    parser.add_argument("--keep", type=Path, help="file the agent saves itself to and resumes from")
    parser.add_argument(
        "--server", help="the agent API's address, instead of the QR's or the saved one"
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between check-ins")
    parser.add_argument("--once", action="store_true", help="enroll, check in once, and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(message)s")
    if args.keep and args.keep.exists():
        agent = Agent.load(args.keep, server=args.server)
    elif args.qr and args.imei:
        agent = Agent.from_qr(args.qr, imei=args.imei, server=args.server)
        agent.enroll()
        if args.keep:
            agent.save(args.keep)
    else:
        parser.error("--qr and --imei are needed to enroll (or --keep naming a saved agent)")
    if args.once:
        try:
            agent.check_in()
        except AgentStopped as stopped:
            print(f"stopped: {stopped}")
        print(agent.phone.describe())
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        agent.run(interval=args.interval, keep=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
