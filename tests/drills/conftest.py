"""Drills: the product's promises under stress, each printing its figure and failing when it
falls short. `make test` runs them small (DRILL_SCALE unset); `make drills` at full size."""

import os

import pytest

FULL = os.environ.get("DRILL_SCALE") == "full"


def scale(small: int, full: int) -> int:
    return full if FULL else small


@pytest.fixture
def report(request):
    """Print a drill's figure on the terminal, beside the test report, whatever pytest captures."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    terminal = request.config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"\n  DRILL {line}")

    return say
