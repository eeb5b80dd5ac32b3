#!/usr/bin/env python3
"""The seed's harness command, kept verbatim: `python tools/rehearsal_harness.py smoke ...`.

A thin shim over the `nexus` console script; every subcommand and flag is nexus's own.
"""

from _shim import run

if __name__ == "__main__":
    run("rehearsal_harness", [])
