"""Every exception to the house checks, in one place, each with its reason.

``OUT_OF_SCOPE``: files the checks do not read at all. ``ALLOWLIST``: per code, the files
(or directories, ending in ``/``) where that code is excused. A single line can instead
carry ``# lint: allow <CODE> <reason>``. An entry that no longer excuses anything fails
the run, so the list only shrinks.
"""

OUT_OF_SCOPE: dict[str, str] = {
    "tests/": "tests build state directly, by factories and model managers",
    "tools/": "benchmarks, the demo and the simulators seed and measure; not product code",
    "apps/demo/": "the demo's commands seed and play the provider; they write rows directly",
}

ALLOWLIST: dict[str, dict[str, str]] = {
    "SC401": {
        "apps/audit/selectors.py": (
            "audit_chain_verify reads one REPEATABLE READ, READ ONLY snapshot; it writes nothing"
        ),
        "apps/core/outbox.py": "the task outbox relays its own rows in batches of one transaction",
        "apps/core/schedule.py": (
            "periodic_tasks_sync writes django-celery-beat's schedule, the setup step of "
            "STYLE.md section 13, not a domain model"
        ),
    },
    "SC403": {
        "apps/core/idempotency.py": "the stored API answers are purged after their day",
        "apps/core/outbox.py": "the task outbox deletes the rows the broker took",
        "apps/core/schedule.py": "periodic_tasks_sync deletes retired django-celery-beat entries",
    },
    "SC404": {
        "apps/core/outbox.py": "the task outbox is the sanctioned path that sends after commit",
        "apps/devices/tasks.py": (
            "the push relay re-queues itself for a retry due within the minute; a task runs "
            "outside any transaction, so there is no commit to wait for"
        ),
    },
}
