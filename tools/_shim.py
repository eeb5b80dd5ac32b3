"""What the seed's tool scripts share: run `nexus <subcommand>` from a clone, installed or not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn


def run(tool: str, subcommand: list[str]) -> NoReturn:
    """Exit with `nexus` run on `subcommand` + this script's own arguments."""
    # Run from a clone without installing: the repository root holds the packages.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from pytest_nexus_rehearsal.cli import main
    except ImportError as exc:  # a missing dependency, not a bug: say how to install
        print(
            f"{tool}: cannot import nexus ({exc}); install it first: "
            "`make install` or `pip install -e .`",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main([*subcommand, *sys.argv[1:]]))
