"""The anomaly window on real files: incremental reads, rotations, checkpoints and damage.

Every test writes the audit log and the ledger with `JsonlAppender` at fixed timestamps, and
compares what an incremental `WindowReader` folded with a reference: a from-scratch read
(checkpoint off) of one file holding every line ever written, in order. Costs are multiples of
1/64 so that sums are exact whatever the order.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nexus_llm.alert.anomaly import RULES, Thresholds, evaluate
from nexus_llm.alert.model import Evaluation
from nexus_llm.alert.window import Scan, WindowReader, checkpoint_path_for, minute_of
from nexus_llm.observe.audit import iso_ts
from nexus_llm.observe.jsonl import JsonlAppender, encode_line

NOW = datetime(2026, 11, 26, 14, 0, 30, tzinfo=UTC)
RETENTION = 60.0
NEED = 15.0
THRESHOLDS = Thresholds(window_min=NEED, cost_usd_per_hour=2.0, rate_limit_burst=3)


def at(minutes_ago: float, now: datetime = NOW) -> datetime:
    return now - timedelta(minutes=minutes_ago)


class Logs:
    """The audit log and the ledger of one test, and a copy of every line written to them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.audit = root / "audit.jsonl"
        self.ledger = root / "ledger.jsonl"
        self.written: dict[str, list[bytes]] = {"audit": [], "ledger": []}
        self._n = 0

    def _write(self, role: str, record: dict[str, object]) -> bytes:
        line = encode_line(record)
        JsonlAppender(self.audit if role == "audit" else self.ledger).append_bytes(line)
        self.written[role].append(line)
        return line

    def cost(
        self, moment: datetime, usd: float, team: str = "payments", project: str = "web"
    ) -> int:
        self._n += 1
        record: dict[str, object] = {
            "ts": iso_ts(moment),
            "env": "test",
            "request_id": f"{self._n:032x}",
            "provider": "gemini",
            "model": "gemini-2.5-flash",
            "team": team,
            "project": project,
            "purpose": "ops",
            "actual_cost_usd": usd,
        }
        return len(self._write("ledger", record))

    def event(
        self, moment: datetime, event: str, provider: str = "gemini", **fields: object
    ) -> int:
        self._n += 1
        record: dict[str, object] = {
            "ts": iso_ts(moment),
            "event": event,
            "env": "test",
            "request_id": f"{self._n:032x}",
            "provider": provider,
            **fields,
        }
        return len(self._write("audit", record))

    def traffic(self, moments: Iterable[datetime]) -> int:
        """A realistic mix per moment; returns the bytes written to both files."""
        written = 0
        for i, moment in enumerate(moments):
            provider = ("gemini", "openai")[i % 2]
            written += self.event(moment, "llm_success", provider, model="m", latency_ms=12.5)
            written += self.cost(moment, 0.015625 * (1 + i % 4), team=f"team-{i % 3}")
            if i % 2 == 0:
                written += self.event(moment, "llm_error", provider, status=429, attempt=1)
                written += self.event(moment, "llm_retry", provider, status=429, attempt=1)
            if i % 5 == 0:
                written += self.event(moment, "llm_error", provider, status=500, attempt=2)
        return written

    def reader(self, *, checkpoint: bool = True, retention: float = RETENTION) -> WindowReader:
        return WindowReader(
            self.audit,
            self.ledger,
            retention_min=retention,
            checkpoint_path=checkpoint_path_for(self.audit) if checkpoint else None,
        )

    def reference(self, now: datetime = NOW, need: float = NEED) -> Scan:
        """A from-scratch read of every line ever written, in one file per role."""
        ref = self.root / "reference"
        ref.mkdir(exist_ok=True)
        for role in ("audit", "ledger"):
            (ref / f"{role}.jsonl").write_bytes(b"".join(self.written[role]))
        reader = WindowReader(ref / "audit.jsonl", ref / "ledger.jsonl", retention_min=RETENTION)
        return reader.scan(now, need_min=need)


def evaluations(scan: Scan, now: datetime = NOW) -> list[Evaluation]:
    return evaluate(scan.data, now, THRESHOLDS)


def assert_same(scan: Scan, reference: Scan, now: datetime = NOW) -> None:
    assert scan.data.to_json() == reference.data.to_json()
    assert evaluations(scan, now) == evaluations(reference, now)


def minutes(start_ago: int, stop_ago: int, now: datetime = NOW) -> list[datetime]:
    """One moment per minute from `start_ago` down to (not including) `stop_ago` minutes ago."""
    return [at(m - 0.25, now) for m in range(start_ago, stop_ago, -1)]


@pytest.fixture
def logs(tmp_path: Path) -> Logs:
    return Logs(tmp_path)


class TestIncremental:
    def test_incremental_read_equals_a_read_from_scratch(self, logs: Logs) -> None:
        """Three scheduled runs, lines appended between them: the buckets and evaluations equal
        a from-scratch read's, and minutes that aged out of the retention are dropped."""
        t0, t1 = at(10), at(5)
        logs.traffic(minutes(80, 10))  # some already older than the retention at NOW
        logs.event(at(70), "breaker_open", "openai", reason="errors")
        first = logs.reader().scan(t0, need_min=NEED)
        assert not first.stats.from_checkpoint
        assert_same(first, logs.reference(t0), t0)

        logs.traffic(minutes(10, 5))
        logs.event(at(6), "breaker_half_open", "openai")
        second = logs.reader().scan(t1, need_min=NEED)
        assert second.stats.from_checkpoint
        assert_same(second, logs.reference(t1), t1)

        logs.traffic(minutes(5, 0))
        logs.event(at(1), "breaker_open", "openai")
        third = logs.reader().scan(NOW, need_min=NEED)
        assert third.stats.from_checkpoint
        reference = logs.reference()
        assert_same(third, reference)
        assert min(third.data.cost) > minute_of(at(RETENTION))
        assert third.data.breakers["openai"].since == iso_ts(at(70))
        firing = {e.rule for e in evaluations(third) if e.firing}
        assert {"rate_limit_burst", "breaker_open"} <= firing

    def test_second_run_reads_only_the_new_bytes(self, logs: Logs) -> None:
        """After a checkpoint, the bytes read are exactly the bytes appended since."""
        logs.traffic(minutes(30, 5))
        whole = logs.audit.stat().st_size + logs.ledger.stat().st_size
        first = logs.reader().scan(at(5), need_min=NEED)
        assert first.stats.bytes_read == whole

        appended = logs.traffic(minutes(5, 0))
        second = logs.reader().scan(NOW, need_min=NEED)
        assert second.stats.from_checkpoint
        assert second.stats.bytes_read == appended
        assert second.stats.lines_read == sum(map(len, logs.written.values())) - (
            first.stats.lines_read
        )

        third = logs.reader().scan(NOW, need_min=NEED)
        assert (third.stats.bytes_read, third.stats.lines_read) == (0, 0)
        assert_same(third, logs.reference())

    def test_scan_without_saving_leaves_the_checkpoint_alone(self, logs: Logs) -> None:
        """`save=False` reads but writes no checkpoint."""
        logs.traffic(minutes(20, 0))
        logs.reader().scan(NOW, need_min=NEED, save=False)
        assert not checkpoint_path_for(logs.audit).exists()

    def test_a_partial_last_line_waits_until_it_is_complete(self, logs: Logs) -> None:
        """A last line without its newline is left for a later run, then read exactly once."""
        logs.traffic(minutes(10, 3))
        lines = {
            "ledger": encode_line({"ts": iso_ts(at(2)), "team": "payments", "project": "web",
                                   "actual_cost_usd": 0.5}),
            "audit": encode_line({"ts": iso_ts(at(2)), "event": "llm_error", "env": "test",
                                  "provider": "gemini", "status": 429}),
        }  # fmt: skip
        paths = {"ledger": logs.ledger, "audit": logs.audit}
        for role, line in lines.items():
            with paths[role].open("ab") as handle:
                handle.write(line[:25])  # a writer caught mid-line
        first = logs.reader().scan(NOW, need_min=NEED)
        for role, path in paths.items():
            assert first.cursors[role].offset == path.stat().st_size - 25
        assert_same(first, logs.reference())

        for role, line in lines.items():
            with paths[role].open("ab") as handle:
                handle.write(line[25:-1])  # all of it but the newline
        second = logs.reader().scan(NOW, need_min=NEED)
        assert (second.stats.lines_read, second.stats.bytes_read) == (0, 0)
        assert_same(second, logs.reference())

        for role, line in lines.items():
            with paths[role].open("ab") as handle:
                handle.write(b"\n")
            logs.written[role].append(line)
        third = logs.reader().scan(NOW, need_min=NEED)
        assert third.stats.from_checkpoint
        assert third.stats.lines_read == 2
        assert third.stats.bytes_read == sum(map(len, lines.values()))
        assert_same(third, logs.reference())
        assert third.data.cost[minute_of(at(2))] == {"payments\tweb": 0.5}


def rotate(path: Path, how: str) -> None:
    """What logrotate does to one file."""
    rotated = path.with_name(path.name + ".1")
    if how.startswith("rename"):
        path.rename(rotated)
        path.touch()  # logrotate's `create`
    else:  # copytruncate
        shutil.copyfile(path, rotated)
        os.truncate(path, 0)
    if how.endswith("gzip"):
        with rotated.open("rb") as src, gzip.open(str(rotated) + ".gz", "wb") as out:
            shutil.copyfileobj(src, out)
        rotated.unlink()


class TestRotation:
    @pytest.mark.parametrize("how", ["rename", "copytruncate", "rename+gzip", "copytruncate+gzip"])
    @pytest.mark.parametrize("new_lines", [1, 40], ids=["shorter", "longer"])
    def test_rotation_finishes_the_old_file_then_reads_the_new(
        self, logs: Logs, how: str, new_lines: int
    ) -> None:
        """The lines appended before the rotation and those after it each count once, whether
        the new file is shorter or longer than the old offset."""
        logs.traffic(minutes(40, 20))
        logs.event(at(30), "breaker_open", "openai")
        logs.reader().scan(at(20), need_min=NEED)
        logs.traffic(minutes(20, 15))  # the old file's tail, not read yet
        logs.event(at(16), "breaker_half_open", "openai")
        for path in (logs.audit, logs.ledger):
            rotate(path, how)
        logs.traffic([at(14 - i * 0.25) for i in range(new_lines)])
        logs.event(at(2), "breaker_open", "openai")

        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.stats.from_checkpoint
        suffix = ".1.gz" if how.endswith("gzip") else ".1"
        assert f"audit: finished the rotated audit.jsonl{suffix}" in scan.stats.notes
        assert f"ledger: finished the rotated ledger.jsonl{suffix}" in scan.stats.notes
        assert_same(scan, logs.reference())
        assert scan.data.breakers["openai"].since == iso_ts(at(30))

        # And the run after reads only what is new in the new file.
        appended = logs.traffic([at(0.5)])
        after = logs.reader().scan(NOW, need_min=NEED)
        assert after.stats.bytes_read == appended
        assert_same(after, logs.reference())

    def test_copytruncate_with_first_lines_longer_than_4_kib(self, logs: Logs) -> None:
        """Audit lines carrying a logged prompt of 5,000 characters rotate like short ones."""
        prompt = "p" * 5000
        for m in range(30, 20, -1):
            logs.event(at(m), "llm_error", status=429, prompt=prompt)
        logs.reader().scan(at(20), need_min=NEED)
        for ago in (19.5, 18.5):
            logs.event(at(ago), "llm_error", status=429, prompt=prompt)  # the tail
        rotate(logs.audit, "copytruncate")
        for m in range(15, 0, -1):  # more bytes than the old offset
            logs.event(at(m), "llm_error", status=429, prompt=prompt)
        assert_same(logs.reader().scan(NOW, need_min=NEED), logs.reference())

    def test_truncation_in_place_reads_from_the_start(self, logs: Logs) -> None:
        """A file emptied in place (no rotation kept) is read again from its first byte."""
        logs.traffic(minutes(30, 10))
        logs.reader().scan(at(10), need_min=NEED)
        for path in (logs.audit, logs.ledger):
            os.truncate(path, 0)
        appended = logs.traffic(minutes(10, 7))
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert "audit: file replaced or truncated; read from the start" in scan.stats.notes
        assert "ledger: file replaced or truncated; read from the start" in scan.stats.notes
        assert scan.stats.bytes_read == appended
        assert_same(scan, logs.reference())

    def test_rotation_before_the_new_file_exists_loses_nothing(self, logs: Logs) -> None:
        """Renamed away, the new file not created yet: the old tail is still read."""
        logs.traffic(minutes(30, 10))
        logs.reader().scan(at(10), need_min=NEED)
        logs.traffic(minutes(10, 5))
        for path in (logs.audit, logs.ledger):
            path.rename(path.with_name(path.name + ".1"))
        logs.reader().scan(NOW, need_min=NEED)
        logs.traffic(minutes(5, 0))  # the new files appear with the next lines
        assert_same(logs.reader().scan(NOW, need_min=NEED), logs.reference())

    @pytest.mark.parametrize("how", ["rename", "rename+gzip", "copytruncate"])
    def test_two_rotations_between_runs_lose_nothing(self, logs: Logs, how: str) -> None:
        """x → x.1 → x.2 and a second x → x.1 before the next run: the cursor's file (.2) is
        finished, the rotation in between (.1, maybe compressed) read whole, once."""
        logs.traffic(minutes(30, 20))
        logs.reader().scan(at(20), need_min=NEED)
        logs.traffic(minutes(20, 15))
        for path in (logs.audit, logs.ledger):
            rotate(path, how.replace("+gzip", ""))
        logs.traffic(minutes(15, 10))  # only in the rotation in between
        for path in (logs.audit, logs.ledger):
            path.with_name(path.name + ".1").rename(path.with_name(path.name + ".2"))
            rotate(path, how)
        logs.traffic(minutes(10, 0))
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert "audit: finished the rotated audit.jsonl.2" in scan.stats.notes
        between = "audit.jsonl.1.gz" if how.endswith("gzip") else "audit.jsonl.1"
        assert f"audit: read the rotated {between}" in scan.stats.notes
        assert_same(scan, logs.reference())

    def test_a_rotation_still_being_compressed_counts_once(
        self, logs: Logs, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While gzip writes x.1.gz beside x.1, the old tail is still counted exactly once."""
        logs.cost(at(30), 0.25)
        logs.reader().scan(at(20), need_min=NEED)
        # More than one 8 MiB read of tail, so that the cut archive yields lines before failing.
        tail = [
            encode_line({"ts": iso_ts(at(14)), "team": "payments", "project": "web",
                         "actual_cost_usd": 0.015625, "request_id": f"{i:032x}"})
            for i in range(80_000)
        ]  # fmt: skip
        JsonlAppender(logs.ledger).append_bytes(b"".join(tail))
        logs.written["ledger"] += tail
        rotated = logs.ledger.with_name("ledger.jsonl.1")
        logs.ledger.rename(rotated)
        packed = gzip.compress(rotated.read_bytes(), compresslevel=1)
        gzipped = rotated.with_name("ledger.jsonl.1.gz")
        gzipped.write_bytes(packed[: len(packed) * 9 // 10])  # gzip is not done yet
        logs.cost(at(3), 0.5)
        # Both rotations are "1": pin the tie to the order that tries the archive first.
        monkeypatch.setattr(
            "nexus_llm.alert.window.rotations",
            lambda path: [p for p in (rotated, gzipped) if path.name == "ledger.jsonl"],
        )
        assert_same(logs.reader().scan(NOW, need_min=NEED), logs.reference())


class TestCheckpoint:
    @pytest.mark.parametrize(
        "damage",
        [
            "{not json",
            "",
            "[]",
            '{"format": 99}',
            "FILES_OK_CURSORS_BAD",
            "FILES_OK_DATA_BAD",
        ],
        ids=["garbage", "empty", "list", "format", "cursors", "data"],
    )
    def test_a_damaged_checkpoint_is_ignored(self, logs: Logs, damage: str) -> None:
        """A checkpoint that cannot be read is set aside: everything is read again, and a good
        checkpoint is written in its place."""
        logs.traffic(minutes(30, 0))
        checkpoint = checkpoint_path_for(logs.audit)
        logs.reader().scan(NOW, need_min=NEED)
        saved = json.loads(checkpoint.read_text())
        if damage == "FILES_OK_CURSORS_BAD":
            saved["cursors"]["audit"] = {"offset": 10, "bogus": 1}
            damage = json.dumps(saved)
        elif damage == "FILES_OK_DATA_BAD":
            saved["data"]["cost"] = {"2026-11-26T13:55": {"payments\tweb": "lots"}}
            damage = json.dumps(saved)
        checkpoint.write_text(damage)

        scan = logs.reader().scan(NOW, need_min=NEED)
        assert not scan.stats.from_checkpoint
        assert_same(scan, logs.reference())
        assert logs.reader().scan(NOW, need_min=NEED).stats.from_checkpoint

    def test_a_checkpoint_of_other_files_is_ignored(self, tmp_path: Path) -> None:
        """A checkpoint kept for other paths does not leak their buckets or offsets."""
        ours, theirs = Logs(tmp_path / "ours"), Logs(tmp_path / "theirs")
        theirs.root.mkdir()
        ours.root.mkdir()
        theirs.traffic(minutes(30, 0))
        theirs.cost(at(3), 10.0, team="other")
        theirs.reader().scan(NOW, need_min=NEED)
        ours.cost(at(3), 0.25)
        ours.event(at(3), "llm_error", status=429)
        shutil.copyfile(checkpoint_path_for(theirs.audit), checkpoint_path_for(ours.audit))

        scan = ours.reader().scan(NOW, need_min=NEED)
        assert not scan.stats.from_checkpoint
        assert_same(scan, ours.reference())
        assert scan.data.cost_by_tags("") == {("payments", "web"): 0.25}

        # The same through an explicit checkpoint path shared with the other files.
        shared = WindowReader(
            ours.audit,
            ours.ledger,
            retention_min=RETENTION,
            checkpoint_path=checkpoint_path_for(theirs.audit),
        )
        theirs.reader().scan(NOW, need_min=NEED)
        scan = shared.scan(NOW, need_min=NEED)
        assert not scan.stats.from_checkpoint
        assert_same(scan, ours.reference())

    def test_a_window_wider_than_the_checkpoint_keeps_forces_a_rebuild(self, logs: Logs) -> None:
        """Asking for 120 minutes from a checkpoint kept for 60 reads everything again (and
        says so); the rebuilt checkpoint then serves 120."""
        logs.traffic(minutes(150, 5))
        logs.reader().scan(at(5), need_min=NEED)
        logs.traffic(minutes(5, 0))

        wide = logs.reader().scan(NOW, need_min=120)
        assert not wide.stats.from_checkpoint
        assert "window wider than the checkpoint keeps: read from scratch" in wide.stats.notes
        assert_same(wide, logs.reference(need=120))
        assert min(wide.data.cost) == minute_of(at(118.75))

        again = logs.reader().scan(NOW, need_min=120)
        assert again.stats.from_checkpoint
        assert not again.stats.notes
        assert_same(again, logs.reference(need=120))

    def test_the_retention_itself_is_served_from_the_checkpoint(self, logs: Logs) -> None:
        """A window as wide as the retention does not rebuild."""
        logs.traffic(minutes(90, 5))
        logs.reader().scan(at(5), need_min=NEED)
        scan = logs.reader().scan(NOW, need_min=RETENTION)
        assert scan.stats.from_checkpoint
        assert_same(scan, logs.reference(need=RETENTION))

    def test_a_read_only_checkpoint_directory_does_not_break_the_scan(
        self, logs: Logs, tmp_path: Path
    ) -> None:
        """Nothing can be saved: every run reads from scratch and still gets it right."""
        if os.geteuid() == 0:
            pytest.skip("running as root: a directory cannot be made read-only to this process")
        locked = tmp_path / "locked"
        locked.mkdir()
        checkpoint = locked / "audit.anomaly.json"
        reader = WindowReader(
            logs.audit, logs.ledger, retention_min=RETENTION, checkpoint_path=checkpoint
        )
        logs.traffic(minutes(30, 5))
        locked.chmod(0o555)
        try:
            first = reader.scan(at(5), need_min=NEED)
            logs.traffic(minutes(5, 0))
            second = reader.scan(NOW, need_min=NEED)
            assert list(locked.iterdir()) == []
        finally:
            locked.chmod(0o755)
        assert not first.stats.from_checkpoint
        assert not second.stats.from_checkpoint
        assert_same(second, logs.reference())

    def test_a_checkpoint_directory_that_cannot_be_created_does_not_break_the_scan(
        self, logs: Logs, tmp_path: Path
    ) -> None:
        """A checkpoint path under a regular file: the scan goes on without saving."""
        (tmp_path / "blocker").write_text("")
        reader = WindowReader(
            logs.audit,
            logs.ledger,
            retention_min=RETENTION,
            checkpoint_path=tmp_path / "blocker" / "audit.anomaly.json",
        )
        logs.traffic(minutes(20, 0))
        assert_same(reader.scan(NOW, need_min=NEED), logs.reference())


class TestDamageAndAge:
    def test_corrupt_lines_are_counted_and_never_fatal(self, logs: Logs) -> None:
        """Broken lines among good ones are counted in `corrupt`; the good ones all count."""
        ts = iso_ts(at(4)).encode()
        logs.cost(at(5), 0.25)
        logs.event(at(5), "llm_error", status=429)
        with logs.ledger.open("ab") as handle:
            handle.write(b"not json at all\n")  # no ts
            handle.write(b'{"ts":"' + ts + b'","team":"payments","actual_cost_usd":\n')
            handle.write(b'[{"ts":"' + ts + b'"}]\n')  # not an object
            handle.write(b'{"ts":"' + ts + b'","team":"\xff\xfe"}\n')  # not UTF-8
            handle.write(b"\n")  # a blank line is not damage
        with logs.audit.open("ab") as handle:
            handle.write(b'{"ts":"' + ts + b'","event":"llm_error","status":429,\n')
            handle.write(b'{"ts":"' + ts + b'","event":"breaker_open","provider":\n')
            # Garbage without the 429 or breaker markers is skipped unparsed, never counted.
            handle.write(b"\x00\x01 garbage\n")
        logs.cost(at(3), 0.5)
        logs.event(at(3), "llm_error", status=429)

        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.stats.corrupt == 6
        assert scan.data.cost_by_tags("") == {("payments", "web"): 0.75}
        assert scan.data.rate_limited_by_provider("") == {"gemini": 2}
        assert scan.data.breakers == {}

    def test_rate_limits_inside_a_200_count_and_other_errors_do_not(self, logs: Logs) -> None:
        """A rate limit or quota error a provider sent inside a 200 (mid-stream) counts like a
        429; a server error inside a 200 does not."""
        logs.event(at(4), "llm_error", "anthropic", status=200, error_type="rate_limit")
        logs.event(at(3), "llm_error", "glm", status=200, error_type="quota_exhausted")
        logs.event(at(2), "llm_error", "openai", status=200, error_type="server")
        logs.event(at(1), "llm_error", "gemini", status=429, error_type="rate_limit")
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.data.rate_limited_by_provider("") == {"anthropic": 1, "glm": 1, "gemini": 1}

    def test_a_line_with_a_damaged_timestamp_is_corrupt(self, logs: Logs) -> None:
        """A ledger line whose ts is not an ISO timestamp is counted corrupt, not bucketed."""
        logs.cost(at(3), 0.25)
        with logs.ledger.open("ab") as handle:
            handle.write(
                b'{"ts":"Thu, 26 Nov 2026 14:00:00 GMT","team":"payments","project":"web",'
                b'"actual_cost_usd":5.0}\n'
            )
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.stats.corrupt == 1
        assert scan.data.cost_by_tags(minute_of(at(NEED))) == {("payments", "web"): 0.25}

    def test_missing_files_give_empty_data(self, logs: Logs) -> None:
        """No audit log and no ledger yet: empty buckets, and every rule still evaluated."""
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert (scan.data.cost, scan.data.rate_limited, scan.data.breakers) == ({}, {}, {})
        assert scan.stats.bytes_read == 0
        assert {e.rule for e in evaluations(scan)} == set(RULES)
        assert not any(e.firing for e in evaluations(scan))

        logs.cost(at(3), 1.0)  # the ledger appears, the audit log still missing
        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.data.cost_by_tags("") == {("payments", "web"): 1.0}
        assert scan.data.rate_limited == {}

    def test_old_lines_are_not_bucketed_but_old_breaker_events_count(self, logs: Logs) -> None:
        """Lines older than the retention leave no bucket; a breaker opened three days ago and
        never closed is still open, since then."""
        opened = at(3 * 24 * 60)
        logs.event(opened, "breaker_open", "openai", reason="errors")
        logs.event(opened + timedelta(minutes=1), "breaker_open", "glm")
        logs.event(opened + timedelta(minutes=2), "breaker_closed", "glm")
        logs.traffic(minutes(int(RETENTION) + 30, int(RETENTION) + 1))  # all too old
        logs.cost(at(RETENTION + 0.25), 1.0)  # the cutoff minute itself: dropped
        logs.cost(at(RETENTION - 1), 0.25)  # the first minute kept

        scan = logs.reader().scan(NOW, need_min=NEED)
        assert scan.data.rate_limited == {}
        assert list(scan.data.cost) == [minute_of(at(RETENTION - 1))]
        assert scan.data.breakers["openai"].state == "open"
        assert scan.data.breakers["openai"].since == iso_ts(opened)
        assert scan.data.breakers["glm"].state == "closed"
        breaker = [e for e in evaluations(scan) if e.rule == "breaker_open"]
        assert [(dict(e.labels), e.value, e.firing) for e in breaker] == [
            ({"provider": "openai"}, 3 * 24 * 60.0, True)
        ]
