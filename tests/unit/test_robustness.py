"""Edge cases found in review: decorator tags, tail reads, odd error bodies, short writes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import nexus_llm
from nexus_llm.errors import RateLimitError, ServerError
from nexus_llm.observe.jsonl import JsonlAppender, read_records
from nexus_llm.observe.query import JsonlView
from nexus_llm.providers.gemini import GeminiAdapter
from nexus_llm.types import HttpReply


class TestTagDecorator:
    def test_tags_decorate_a_coroutine(self) -> None:
        """@nexus_llm.tags on an async def applies inside the coroutine."""

        @nexus_llm.tags(team="deco")
        async def inside() -> str | None:
            return nexus_llm.current_tags().team

        assert asyncio.run(inside()) == "deco"
        assert nexus_llm.current_tags().team is None

    def test_tags_decorate_a_function_over_outer_tags(self) -> None:
        """@nexus_llm.tags on a def merges over the caller's block, field by field."""

        @nexus_llm.tags(project="p1")
        def inside() -> tuple[str | None, str | None]:
            now = nexus_llm.current_tags()
            return now.team, now.project

        with nexus_llm.tags(team="outer"):
            assert inside() == ("outer", "p1")

    def test_carry_tags_keeps_the_threads_own_fields(self) -> None:
        """Fields the captured tags leave unset fall back to the running context."""
        wrapped = nexus_llm.carry_tags(lambda: nexus_llm.current_tags().team)
        with nexus_llm.tags(team="runner"):
            assert wrapped() == "runner"


class TestRecentTail:
    def test_recent_reads_only_the_tail(self, tmp_path: Path) -> None:
        """recent() finds the last lines without reading the head of a large file."""
        path = tmp_path / "ledger.jsonl"
        out = JsonlAppender(path)
        for n in range(5000):
            out.append({"request_id": f"r{n}", "pad": "x" * 100})
        view = JsonlView(path)
        found = view.recent(max_bytes=2000)
        assert found
        assert found[-1]["request_id"] == "r4999"
        assert len(found) < 50
        assert all(r["request_id"] != "r0" for r in found)
        assert view.recent_for_request("r4999") == [found[-1]]

    def test_recent_of_a_missing_file_is_empty(self, tmp_path: Path) -> None:
        """A file not yet created reads as no records."""
        assert JsonlView(tmp_path / "none.jsonl").recent() == []


class TestOddErrorBodies:
    @pytest.mark.parametrize("details", [5, "text", {"a": 1}, None])
    def test_non_list_details_still_give_a_typed_error(self, details: object) -> None:
        """A malformed `details` never escapes as a TypeError."""
        body = {
            "error": {
                "code": 429,
                "message": "slow down",
                "status": "RESOURCE_EXHAUSTED",
                "details": details,
            }
        }
        with pytest.raises(RateLimitError):
            GeminiAdapter().parse_reply(HttpReply(429, {}, json.dumps(body).encode()), model="m")

    def test_non_list_violations_still_give_a_typed_error(self) -> None:
        """A QuotaFailure with a non-list `violations` is still a plain rate limit."""
        body = {
            "error": {
                "code": 429,
                "message": "x",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": 7}
                ],
            }
        }
        with pytest.raises(RateLimitError):
            GeminiAdapter().parse_reply(HttpReply(429, {}, json.dumps(body).encode()), model="m")

    def test_500_with_odd_details(self) -> None:
        """A 500 with odd details is a ServerError."""
        body = {"error": {"code": 500, "message": "boom", "details": 1}}
        with pytest.raises(ServerError):
            GeminiAdapter().parse_reply(HttpReply(500, {}, json.dumps(body).encode()), model="m")


class TestShortWrite:
    def test_a_short_write_costs_one_line_only(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After a torn write the next line still parses: the damage stays one corrupt line."""
        path = tmp_path / "audit.jsonl"
        out = JsonlAppender(path)
        out.append({"n": 1})
        real_write = os.write
        calls = {"n": 0}

        def short_once(fd: int, data: bytes) -> int:
            calls["n"] += 1
            if calls["n"] == 1:
                return real_write(fd, data[: len(data) // 2])
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", short_once)
        with pytest.raises(OSError, match="short write"):
            out.append({"n": 2, "pad": "y" * 40})
        monkeypatch.setattr(os, "write", real_write)
        out.append({"n": 3})
        records, stats = read_records([path])
        assert [r["n"] for r in records] == [1, 3]
        assert stats.skipped_corrupt == 1
