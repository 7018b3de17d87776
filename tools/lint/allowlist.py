"""Every exception to the house checks, in one place, each with its reason.

``OUT_OF_SCOPE``: files the checks do not read at all. ``ALLOWLIST``: per code, the files
(or directories, ending in ``/``) where that code is excused. A single line can instead
carry ``# lint: allow <CODE> <reason>``. An entry that no longer excuses anything is
reported, so the list only shrinks.
"""

OUT_OF_SCOPE: dict[str, str] = {
    "tests/": "tests build state directly, by factories and model managers",
    "tools/": "benchmarks, the demo and the simulators seed and measure; not product code",
    "apps/lenders/management/commands/seed_demo.py": "the demo seed writes its rows directly",
}

ALLOWLIST: dict[str, dict[str, str]] = {
    "SC101": {
        "apps/lenders/tenancy.py": "the tenancy mechanism itself: the admin base class scopes here",
    },
    "SC401": {
        "apps/core/outbox.py": "the task outbox relays its own rows in batches of one transaction",
    },
    "SC403": {
        "apps/core/outbox.py": "the task outbox deletes the rows the broker took",
    },
    "SC404": {
        "apps/core/outbox.py": "the task outbox is the sanctioned path that sends after commit",
    },
}
