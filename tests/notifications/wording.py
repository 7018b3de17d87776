"""How the messages write things, for the tests that read them."""

from datetime import date


def django_date(on: date) -> str:
    """English DATE_FORMAT ("j F Y", config/formats/en): "24 December 2026", "3 May 2027"."""
    return f"{on.day} {on.strftime('%B')} {on.year}"
