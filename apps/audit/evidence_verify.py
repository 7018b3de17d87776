"""Check an evidence file's audit events: python verify.py audit-events.json

Standalone (the Python standard library and hashing.py beside it), for a court,
an auditor or the customer's lawyer. For each event it recomputes the hash
from the event's own fields; checks that the data shown is the data hashed;
that the events come in the order of their chain; and that wherever two
events are neighbours in the chain, the second names the first's hash. It
prints the first event that fails and exits 1, or prints OK and exits 0.
That the chain has no event missing between the ones shown is proved by the
lender running ``verify_audit`` over the whole chain, whose head is given.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

try:  # beside hashing.py in the evidence file
    from hashing import event_hash, event_hash_v1  # type: ignore[import-not-found]  # the evidence file's module
except ImportError:  # inside the application
    from apps.audit.hashing import event_hash, event_hash_v1

FIELDS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "reason",
    "ip",
    "user_agent",
    "prev_hash",
)


def check(evidence: dict[str, Any]) -> str | None:
    """The first problem found in ``evidence``'s events, or None."""
    lender_id = evidence["chain"]["lender_id"]
    previous: dict[str, Any] | None = None
    for event in evidence["events"]:
        fields = {name: event[name] for name in FIELDS}
        fields["occurred_at"] = datetime.fromisoformat(event["occurred_at"])
        name = f"event seq {event['seq']} ({event['action']})"
        if event["format"] == 2:
            if json.loads(event["data_text"]) != event["data"]:
                return f"{name}: the data shown is not the data hashed"
            recomputed = event_hash(lender_id=lender_id, data_text=event["data_text"], **fields)
        elif event["format"] == 1:
            recomputed = event_hash_v1(lender_id=lender_id, data=event["data"], **fields)
        else:
            return f"{name}: unknown hash format {event['format']}"
        if recomputed != event["hash"]:
            return f"{name}: its hash does not match its contents"
        if previous is not None:
            if event["seq"] <= previous["seq"]:
                return f"{name}: out of the chain's order"
            if event["seq"] == previous["seq"] + 1 and event["prev_hash"] != previous["hash"]:
                return f"{name}: does not follow the event before it in the chain"
        previous = event
    head = evidence["chain"]
    if previous is not None and previous["seq"] > head["head_seq"]:
        return f"event seq {previous['seq']} lies past the chain head given"
    return None


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "audit-events.json"
    with open(path, encoding="utf-8") as handle:
        evidence = json.load(handle)
    problem = check(evidence)
    if problem:
        print(f"BROKEN  {problem}")  # noqa: T201  (a command-line tool)
        return 1
    count, head = len(evidence["events"]), evidence["chain"]
    print(f"OK      {count} events; chain head seq {head['head_seq']} {head['head_hash']}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
