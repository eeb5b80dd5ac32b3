"""A local HTTP/1.1 stand-in for LLM provider APIs (four of them), with run-time fault injection.

``Emulator`` runs in-process on a loopback port; ``serve`` runs one in the foreground for the
``nexus emulator`` command. Faults (``FaultKind``) are injected from Python or over HTTP at
``/_emulator/faults``.
"""

from __future__ import annotations

from ._emulator import ROUTES, Emulator, serve
from ._faults import Fault, FaultKind


def emulated_providers() -> list[str]:
    """The providers the emulator speaks for, in registry order."""
    return list(ROUTES)


__all__ = ["Emulator", "Fault", "FaultKind", "emulated_providers", "serve"]
