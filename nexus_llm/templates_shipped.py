"""Templates shipped with the distribution (the scorecard form, the FinOps report).

They live in the repository's top-level `templates/` — where the seed's users look for them —
and the wheel carries that folder as `nexus_llm/templates/`. In a clone or an editable install
they are read where they live.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_template(name: str) -> str:
    packaged = resources.files("nexus_llm").joinpath("templates", name)
    if packaged.is_file():
        return packaged.read_text("utf-8")
    return (Path(__file__).resolve().parent.parent / "templates" / name).read_text("utf-8")
