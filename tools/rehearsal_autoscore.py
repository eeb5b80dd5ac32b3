#!/usr/bin/env python3
"""The seed's autoscore command, kept verbatim: `python tools/rehearsal_autoscore.py --topology
"single+redis" --providers "gemini-first (openai/anthropic/glm optional)"`.

A thin shim over `nexus autoscore`: every flag is nexus's own.
"""

from _shim import run

if __name__ == "__main__":
    run("rehearsal_autoscore", ["autoscore"])
