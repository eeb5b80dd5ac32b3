"""The package's public face: exactly `__all__`, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import nexus_llm


def test_every_public_name_resolves() -> None:
    """Each name in __all__ is importable from the package, and nothing else is offered."""
    for name in nexus_llm.__all__:
        assert getattr(nexus_llm, name) is not None
    assert sorted(dir(nexus_llm)) == sorted(nexus_llm.__all__)


def test_tags_is_the_function_not_a_module() -> None:
    """`nexus_llm.tags` stays the context manager even after every submodule is imported."""
    import nexus_llm.client  # imports the tagging module under the hood

    assert callable(nexus_llm.tags)
    with nexus_llm.tags(team="t"):
        assert nexus_llm.current_tags().team == "t"


def test_import_is_light() -> None:
    """`import nexus_llm` loads no HTTP client until a client is asked for."""
    code = (
        "import sys, nexus_llm\n"
        "assert 'httpx' not in sys.modules, 'httpx loaded'\n"
        "nexus_llm.Client\n"
        "assert 'httpx' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
