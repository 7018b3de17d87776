"""How the messages write things, for the tests that read them."""

from datetime import date


def django_date(on: date) -> str:
    """English DATE_FORMAT ("N j, Y"): "Dec. 24, 2026", "May 3, 2027"."""
    month = on.strftime("%B")
    short = {
        "January": "Jan.",
        "February": "Feb.",
        "August": "Aug.",
        "September": "Sept.",
        "October": "Oct.",
        "November": "Nov.",
        "December": "Dec.",
    }.get(month, month)
    return f"{short} {on.day}, {on.year}"
