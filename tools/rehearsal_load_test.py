#!/usr/bin/env python3
"""The seed's load command, kept verbatim: `python tools/rehearsal_load_test.py --prompt "ping"
--n 50 --concurrency 5 --purpose ops --team ops --project rehearsal`.

A thin shim over `nexus load`: every flag is nexus's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a clone without installing: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from pytest_nexus_rehearsal.cli import main
except ImportError as exc:  # a missing dependency, not a bug: say how to install
    print(
        f"rehearsal_load_test: cannot import nexus ({exc}); install it first: "
        "`make install` or `pip install -e .`",
        file=sys.stderr,
    )
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main(["load", *sys.argv[1:]]))
