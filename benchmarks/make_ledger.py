"""Write a synthetic cost ledger in the exact line shape `CostLedger` writes.

    python benchmarks/make_ledger.py OUT.jsonl [--lines 1000000] [--days 60] [--start 2026-01-01]

Time-ordered over the days, 10 teams, 20 projects, 4 providers, a few models and purposes,
about 2% dedupe hits and 1% estimated lines. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta

PROVIDERS = {
    "gemini": ["gemini-2.5-flash", "gemini-2.5-pro"],
    "openai": ["gpt-4o-mini", "gpt-4o"],
    "anthropic": ["claude-haiku-4-5", "claude-sonnet-4-5"],
    "glm": ["glm-4.5", "glm-4-plus"],
}
PURPOSES = ["ops", "support", "search", "summarise", "billing"]


def line(rng: random.Random, ts: datetime, n: int, extra: dict[str, object] | None = None) -> str:
    provider = rng.choice(list(PROVIDERS))
    dedupe = rng.random() < 0.02
    approx = not dedupe and rng.random() < 0.01
    inp, out = rng.randint(50, 4000), rng.randint(10, 800)
    cost = 0.0 if dedupe else round((inp * 0.3 + out * 2.5) / 1e6, 10)
    record = {
        "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "env": "prod",
        "request_id": f"{n:032x}",
        "provider": provider,
        "model": rng.choice(PROVIDERS[provider]),
        "team": f"team-{rng.randrange(10)}",
        "project": f"project-{rng.randrange(20)}",
        "purpose": rng.choice(PURPOSES),
        "input_tokens": 0 if dedupe else inp,
        "output_tokens": 0 if dedupe else out,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "actual_cost_usd": cost,
        "approx_tokens": approx,
        "price_version": "2026-11-26",
        "dedupe_hit": dedupe,
        "saved_cost_usd": round((inp * 0.3 + out * 2.5) / 1e6, 10) if dedupe else 0.0,
        "priced": True,
    }
    return json.dumps(record, separators=(",", ":"))


def write(
    path: str, *, lines: int, days: int, start: datetime, seed: int = 7, first: int = 0
) -> None:
    rng = random.Random(seed)
    step = timedelta(days=days) / max(lines, 1)
    with open(path, "a", encoding="utf-8") as out:
        for n in range(first, first + lines):
            out.write(line(rng, start + step * (n - first), n) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--start", default="2026-01-01")
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    write(args.out, lines=args.lines, days=args.days, start=start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
