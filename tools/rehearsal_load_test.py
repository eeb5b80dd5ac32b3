#!/usr/bin/env python3
"""The seed's load command, kept verbatim: `python tools/rehearsal_load_test.py --prompt "ping"
--n 50 --concurrency 5 --purpose ops --team ops --project rehearsal`.

A thin shim over `nexus load`: every flag is nexus's own.
"""

from _shim import run

if __name__ == "__main__":
    run("rehearsal_load_test", ["load"])
