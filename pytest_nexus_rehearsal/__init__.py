"""pytest-nexus-rehearsal: the operations rehearsal as a pytest suite.

Public names: `rehearsal` (the marker namespace). Importing this package stays cheap: the
`nexus` command imports it without pytest's marker machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .markers import rehearsal

__all__ = ["rehearsal"]


def __getattr__(name: str) -> object:
    if name == "rehearsal":
        from .markers import rehearsal

        return rehearsal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
