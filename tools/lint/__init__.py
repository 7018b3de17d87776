"""The house checks: STYLE.md's rules that ruff cannot see (tools/lint/README.md).

``python -m tools.lint`` runs them; ``checks/`` holds one module per rule family,
``allowlist.py`` every exception with its reason, ``engine.py`` what they share.
"""
