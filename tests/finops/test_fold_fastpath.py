"""The fold's fast path (one regex over a whole chunk, for lines in `CostLedger`'s exact shape)
gives exactly what the tolerant json path gives, line shape by line shape.

The reference is the json path alone (`Folder._fold_json` on every non-blank line): the fast
path may only take a line that json reads, and must read it to the same day, names, flags and
numbers. Lines come from `CostLedger` itself (random tags, numbers and flags, unicode, quotes
and control characters that it escapes) and from mutations of them (other key orders, spaces,
CRLF, missing fields, nulls, booleans, negative, NaN, huge and exponent numbers, leading zeros,
other timestamp forms, impossible dates, raw control characters, bytes that are not UTF-8,
truncated lines), mixed at random and folded in random chunkings.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from nexus_llm.finops.cube import Folder, Ledger, LineChunks
from tests.finops.finops_support import Call, assert_same, write_calls

TAGS = [
    "ops",
    "search",
    "",
    "team a",
    "équipe",
    "研究",
    "🚀 launch",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "nul\x00",
    "del\x7f",
    'comma,"quote',
    "{brace}",
    "\u2028sep",
]
# (No huge costs here: sums of ~1e20 taken in another order differ by more than a cent.)
COSTS = [0.0, 0.25, 2.0, 1e-05, 2.5e-07, 0.0002841, 123456.789, 1e-300, 5e-324]
TOKENS = [0, 1, 7, 255, 256, 4000, 10**6, 999_999_999_999_999, 10**15, 2**53 + 1]


def reference(data: bytes) -> Ledger:
    """The json path alone, line by line (split on \\n, blank lines skipped)."""
    folder = Folder()
    for line in data.split(b"\n"):
        if line.strip():
            folder._fold_json(line)
    return folder.finish()


def folded(data: bytes, cuts: list[int] | None = None) -> Ledger:
    """`Folder.fold` over whole-line chunks cut at the given newline offsets."""
    folder = Folder()
    start = 0
    for cut in [*(cuts or []), len(data)]:
        if cut > start:
            folder.fold(data[start:cut])
            start = cut
    return folder.finish()


def assert_ledgers_equal(got: Ledger, want: Ledger) -> None:
    assert got.corrupt == want.corrupt, (got.corrupt, want.corrupt)
    assert sorted(got.days) == sorted(want.days)
    for day, stats in want.days.items():
        assert_same(got.days[day].to_json(), stats.to_json(), day)


def random_calls(rng: random.Random, n: int) -> list[Call]:
    calls = []
    for _ in range(n):
        day = rng.randint(1, 3)
        ms = rng.choice([0, 1, 999])
        calls.append(
            Call(
                f"2026-01-0{day}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                f"{rng.randint(0, 59):02d}.{ms:03d}Z",
                provider=rng.choice(["gemini", "openai", *TAGS[:8]]),
                model=rng.choice(["gpt-4o", "m", *TAGS]),
                team=rng.choice(TAGS),
                project=rng.choice(["web", "p", *TAGS]),
                purpose=rng.choice(["ops", "support", *TAGS]),
                input_tokens=rng.choice(TOKENS),
                output_tokens=rng.choice(TOKENS),
                cost=rng.choice(COSTS),
                cached=rng.choice([0, 0, 0, 10, 999_999]),
                reasoning=rng.choice([0, 0, 0, 30]),
                approx=rng.random() < 0.3,
                version=rng.choice(["2026-01", "", "v\u00e9", 'q"uote']),
                dedupe=rng.random() < 0.3,
                saved=rng.choice([0.0, 0.0, 0.25, 1e-07]),
                priced=rng.random() < 0.8,
            )
        )
    return calls


def writer_lines(tmp_path: Path, calls: list[Call]) -> list[bytes]:
    path = tmp_path / f"w{len(list(tmp_path.iterdir()))}.jsonl"
    write_calls(path, calls)
    return path.read_bytes().split(b"\n")[:-1]


# -- mutations of one written line ---------------------------------------------------------


def _record(line: bytes) -> dict[str, object]:
    record = json.loads(line)
    assert isinstance(record, dict)
    return record


def _dump(record: dict[str, object], separators: tuple[str, str] = (",", ":")) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=separators).encode()


def _set(key: str, value: object) -> Callable[[bytes], bytes]:
    def mutate(line: bytes) -> bytes:
        record = _record(line)
        record[key] = value
        return _dump(record)

    return mutate


def _raw(key: str, text: bytes) -> Callable[[bytes], bytes]:
    """Replace the value of a number/bool key by raw bytes (forms json.dumps never writes)."""

    def mutate(line: bytes) -> bytes:
        record = _record(line)
        record[key] = "@@"
        return _dump(record).replace(b'"@@"', text)

    return mutate


def _drop(key: str) -> Callable[[bytes], bytes]:
    def mutate(line: bytes) -> bytes:
        record = _record(line)
        record.pop(key, None)
        return _dump(record)

    return mutate


def _reorder(line: bytes) -> bytes:
    record = _record(line)
    items = list(record.items())
    random.Random(len(line)).shuffle(items)
    return _dump(dict(items))


def _swap_project_purpose(line: bytes) -> bytes:
    record = _record(line)
    items = list(record.items())
    keys = [k for k, _ in items]
    a, b = keys.index("project"), keys.index("purpose")
    items[a], items[b] = items[b], items[a]
    return _dump(dict(items))


def _ts(value: str) -> Callable[[bytes], bytes]:
    return _set("ts", value)


def _raw_tag(text: bytes) -> Callable[[bytes], bytes]:
    def mutate(line: bytes) -> bytes:
        record = _record(line)
        record["team"] = "@@"
        return _dump(record).replace(b"@@", text)

    return mutate


MUTATIONS: list[Callable[[bytes], bytes]] = [
    lambda line: line,
    _reorder,
    _swap_project_purpose,
    lambda line: _dump(_record(line), separators=(", ", ": ")),  # spaces
    lambda line: line + b"\r",  # CRLF
    lambda line: line + b"  ",  # trailing spaces
    lambda line: b"  " + line,
    lambda line: line[:-1] + b',"extra":1}',
    lambda line: line[:-1] + b',"priced":false}',  # a duplicate key: the last one wins
    lambda line: line[: len(line) // 2],  # truncated
    lambda line: b"\xef\xbb\xbf" + line,  # a BOM
    _drop("cached_tokens"),
    _drop("saved_cost_usd"),
    _drop("priced"),
    _drop("price_version"),
    _drop("team"),
    _drop("ts"),
    _set("actual_cost_usd", None),
    _set("actual_cost_usd", True),
    _set("actual_cost_usd", "0.5"),
    _set("actual_cost_usd", -0.5),
    _set("actual_cost_usd", -0.0),
    _set("actual_cost_usd", 7),
    _set("input_tokens", 1.5),
    _set("input_tokens", None),
    _set("input_tokens", -3),
    _set("input_tokens", 10**20),
    _set("price_version", None),
    _set("priced", None),
    _set("dedupe_hit", 1),
    _set("approx_tokens", "true"),
    _set("team", 5),
    _set("provider", None),
    _raw("actual_cost_usd", b"NaN"),
    _raw("actual_cost_usd", b"Infinity"),
    _raw("actual_cost_usd", b"1e400"),
    _raw("actual_cost_usd", b"1e-400"),
    _raw("actual_cost_usd", b"1E+2"),
    _raw("actual_cost_usd", b"2.5e-07"),
    _raw("actual_cost_usd", b"0.1234567890123456789012"),
    _raw("actual_cost_usd", b"00.5"),
    _raw("actual_cost_usd", b".5"),
    _raw("actual_cost_usd", b"1."),
    _raw("actual_cost_usd", b"1e5"),
    _raw("actual_cost_usd", b"1e100"),
    _raw("actual_cost_usd", b"1e-99999"),
    _raw("actual_cost_usd", b"1e-"),
    _raw("actual_cost_usd", b"1e+-5"),
    _raw("actual_cost_usd", b"-0"),
    _raw("saved_cost_usd", b"0"),
    _raw("saved_cost_usd", b"0.00"),
    _raw("saved_cost_usd", b"0.05"),
    _raw("input_tokens", b"007"),
    _raw("input_tokens", b"0"),
    _raw("input_tokens", b"1" * 15),
    _raw("input_tokens", b"1" * 16),
    _raw("input_tokens", b"1" * 5000),
    _raw("cached_tokens", b"00"),
    _raw("cached_tokens", b"01"),
    _raw("cached_tokens", b"5"),
    _raw("reasoning_tokens", b"12"),
    _raw("priced", b"True"),
    _raw("approx_tokens", b"null"),
    _ts("2026-01-02T00:00:00Z"),
    _ts("2026-01-02T00:00:00.1Z"),
    _ts("2026-01-02T00:00:00.1234Z"),
    _ts("2026-01-02T00:00:00.123456Z"),
    _ts("2026-01-02T00:00:00.1234567Z"),
    _ts("2026-01-02T23:30:00.000+00:00"),
    _ts("2026-01-02T23:30:00.000+05:30"),
    _ts("2026-01-02T23:30:00.000-05:00"),
    _ts("2026-01-02T23:30:00.000"),  # naive: taken as UTC
    _ts("2026-01-02"),
    _ts("2026-02-30T10:00:00.000Z"),  # no such day
    _ts("2026-13-01T10:00:00.000Z"),
    _ts("0000-01-01T10:00:00.000Z"),
    _ts("0999-01-01T10:00:00.000Z"),
    _ts("2026-01-02T24:00:00.000Z"),
    _ts("2026-01-02T23:60:00.000Z"),
    _ts("2026-01-02T23:59:60.000Z"),
    _ts("2026-01-02T9:00:00.000Z"),
    _ts("2026-1-02T09:00:00.000Z"),
    _ts("not a time"),
    _raw_tag(b"tab\there"),  # raw control characters: json rejects them
    _raw_tag(b"nul\x00"),
    _raw_tag(b"esc\x1b"),
    _raw_tag(b"del\x7f"),  # DEL is allowed raw
    _raw_tag(b"\xff\xfe"),  # not UTF-8
    _raw_tag(b"\xed\xa0\x80"),  # a UTF-8-encoded surrogate: not UTF-8 either
    _raw_tag(b"\xc3\xa9t\xc3\xa9"),  # UTF-8: fine
    _raw_tag(b"a\\u00e9"),  # an escape json decodes
    _raw_tag(b"bad\\escape"),  # an invalid escape
    _raw_tag(b'a\\"b'),
    _raw_tag(b"a\\\\"),
]
# Huge amounts: alone only (sums of them taken in another order differ by more than a cent).
HUGE = [
    _raw("actual_cost_usd", b"1e99"),
    _raw("actual_cost_usd", b"1e+99"),
    _raw("actual_cost_usd", b"1e123"),
    _raw("actual_cost_usd", b"3.14159e20"),
    _raw("actual_cost_usd", b"123456789012345.5"),
    _raw("actual_cost_usd", b"1234567890123456.5"),
    _raw("saved_cost_usd", b"1e50"),
]
JUNK = [b"", b"   ", b"not json", b"[1,2]", b"null", b"{}", b'{"ts":"2026-01-02T00:00:00.000Z"}']


def mixed(rng: random.Random, good: list[bytes], n: int, odd: float) -> list[bytes]:
    lines = []
    for _ in range(n):
        line = rng.choice(good)
        if rng.random() < odd:
            line = rng.choice(MUTATIONS)(line) if rng.random() < 0.9 else rng.choice(JUNK)
        lines.append(line)
    return lines


def newline_cuts(rng: random.Random, data: bytes, count: int) -> list[int]:
    ends = [n + 1 for n, byte in enumerate(data) if byte == 0x0A]
    return sorted(rng.sample(ends, min(count, len(ends))))


class TestEachShapeAlone:
    def test_every_mutation_equals_the_json_path(self, tmp_path: Path) -> None:
        """Each mutation of each written line, alone in a chunk and among clean lines."""
        rng = random.Random(5)
        good = writer_lines(tmp_path, random_calls(rng, 40))
        for n, mutate in enumerate(MUTATIONS + HUGE):
            for line in good:
                odd = mutate(line)
                alone = [odd + b"\n"]
                among = [b"\n".join([good[0], odd, good[1]]) + b"\n"] if mutate not in HUGE else []
                for data in alone + among:
                    try:
                        assert_ledgers_equal(folded(data), reference(data))
                    except AssertionError as error:  # pragma: no cover - diagnostics
                        raise AssertionError(f"mutation {n}: {odd!r}: {error}") from None

    def test_writer_lines_take_the_fast_path(self, tmp_path: Path) -> None:
        """Plain lines (no escapes needed) are read by the regex, not by json: the speed-up is
        real, not a silent fallback."""
        rng = random.Random(1)
        calls = [
            c
            for c in random_calls(rng, 200)
            if c.input_tokens < 10**15
            and c.output_tokens < 10**15
            and all(
                t.isprintable() and '"' not in t and "\\" not in t
                for t in (c.provider, c.model, c.team, c.project, c.purpose, c.version)
            )
        ]
        data = b"\n".join(writer_lines(tmp_path, calls)) + b"\n"
        folder = Folder()
        json_lines: list[bytes] = []
        folder._fold_json = json_lines.append  # type: ignore[method-assign]
        folder.fold(data)
        assert json_lines == []
        assert_ledgers_equal(folder.finish(), reference(data))


class TestMixedChunks:
    @pytest.mark.parametrize("seed", range(12))
    def test_random_mixes_in_random_chunkings(self, tmp_path: Path, seed: int) -> None:
        rng = random.Random(seed)
        good = writer_lines(tmp_path, random_calls(rng, 60))
        lines = mixed(rng, good, 600, odd=rng.choice([0.0, 0.02, 0.3, 1.0]))
        data = b"\n".join(lines) + b"\n"
        want = reference(data)
        assert_ledgers_equal(folded(data), want)
        assert_ledgers_equal(folded(data, newline_cuts(rng, data, 7)), want)
        assert_ledgers_equal(folded(data, newline_cuts(rng, data, len(lines))), want)

    @pytest.mark.parametrize("seed", range(4))
    def test_line_chunks_with_a_partial_last_line(self, tmp_path: Path, seed: int) -> None:
        """Through `LineChunks` with small reads: the same ledger, and the write in progress
        left for later."""
        rng = random.Random(100 + seed)
        good = writer_lines(tmp_path, random_calls(rng, 50))
        lines = mixed(rng, good, 400, odd=0.1)
        data = b"\n".join(lines) + b"\n"
        partial = good[0][: rng.randint(1, len(good[0]) - 1)]
        chunks = LineChunks(io.BytesIO(data + partial), size=rng.choice([97, 1000, 4096]))
        folder = Folder()
        offset = 0
        for chunk, end in chunks:
            folder.fold(chunk)
            offset = end
        assert offset == len(data)
        assert chunks.trailing == len(partial)
        assert_ledgers_equal(folder.finish(), reference(data))

    def test_many_days_and_collapses(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Out-of-order days and a fine table collapsed every few lines: still the same."""
        from nexus_llm.finops import cube

        monkeypatch.setattr(cube, "_FINE_LIMIT", 5)
        rng = random.Random(9)
        calls = random_calls(rng, 300)
        calls = [
            replace(c, ts=c.ts.replace("2026-01-0", f"2026-0{1 + n % 3}-1"))
            for n, c in enumerate(calls)
        ]
        good = writer_lines(tmp_path, calls)
        rng.shuffle(good)
        data = b"\n".join(good) + b"\n"
        assert_ledgers_equal(folded(data, newline_cuts(rng, data, 20)), reference(data))


class TestLineChunks:
    @pytest.mark.parametrize("seed", range(6))
    def test_chunks_are_the_whole_lines_between_start_and_stop(self, seed: int) -> None:
        """Any buffer size (lines longer than it included), start and stop: the chunks join to
        exactly the whole lines of [start, stop), each offset is just after its chunk, and
        `trailing` counts the bytes after the last newline."""
        rng = random.Random(seed)
        lines = [b"x" * rng.choice([0, 1, 5, 300, 5000]) for _ in range(60)]
        data = b"\n".join(lines) + rng.choice([b"\n", b"", b"partial"])
        for _ in range(20):
            start = rng.choice([0, rng.randint(0, len(data))])
            stop = rng.choice([None, rng.randint(start, len(data))])
            end = len(data) if stop is None else stop
            chunks = LineChunks(
                io.BytesIO(data), start=start, stop=stop, size=rng.choice([1, 7, 4096])
            )
            got, offset = [], start
            for chunk, after in chunks:
                assert chunk.endswith(b"\n")
                offset += len(chunk)
                assert after == offset
                got.append(chunk)
            whole = data[start:end]
            cut = whole.rfind(b"\n") + 1
            assert b"".join(got) == whole[:cut]
            assert chunks.trailing == len(whole) - cut
