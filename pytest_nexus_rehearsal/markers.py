"""The `rehearsal` marker namespace: `.smoke`, `.ops`, `.day1`, `.manual("…")`, `.check(n)`.

They are ordinary pytest markers underneath, so `pytest -m smoke` selects and `--strict-markers`
stays clean (the plugin registers them in `pytest_configure`).
"""

from __future__ import annotations

from typing import Final

import pytest

STAGE_MARKERS: Final = {
    "smoke": "stage A, the 30-minute smoke (minimum pass)",
    "ops": "stage B, the 2-hour rehearsal (operations pass)",
    "day1": "stage C, the 1-day rehearsal (release pass)",
}
MANUAL = "manual"
CHECK = "nexus_check"

MARKER_HELP: Final = {
    **{name: f"{name}: rehearsal check of {text}" for name, text in STAGE_MARKERS.items()},
    MANUAL: "manual(instructions): a check a person does; skipped and shown as MANUAL on the "
    "scorecard with its instructions",
    CHECK: "nexus_check(row): the scorecard row (1-8, autoscore) this test gives evidence for",
}


class RehearsalMarkers:
    """Decorators for rehearsal checks. Use the shared instance `rehearsal`."""

    smoke: Final = pytest.mark.smoke
    ops: Final = pytest.mark.ops
    day1: Final = pytest.mark.day1

    @staticmethod
    def manual(instructions: str) -> pytest.MarkDecorator:
        """A check done by a person: skipped, shown as MANUAL with these instructions."""
        if not instructions.strip():
            raise ValueError("rehearsal.manual() needs the instructions a person should follow")
        return pytest.mark.manual(instructions)

    @staticmethod
    def check(row: int | str) -> pytest.MarkDecorator:
        """Tie a test to a scorecard row: 1-8 from the seed's checklist, or 'autoscore'."""
        return pytest.mark.nexus_check(str(row))


rehearsal = RehearsalMarkers()
