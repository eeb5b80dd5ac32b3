"""Tags: resolution order, nesting, and isolation across threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nexus_llm.config import Settings
from nexus_llm.errors import ConfigError
from nexus_llm.tagging import (
    DEFAULT_PURPOSE,
    ResolvedTags,
    Tags,
    carry_tags,
    current_tags,
    resolve_tags,
    tags,
)


@pytest.fixture
def settings() -> Settings:
    """Settings with explicit default team and project."""
    return Settings.from_env({"LLM_DEFAULT_TEAM": "platform", "LLM_DEFAULT_PROJECT": "core"})


class TestResolution:
    """explicit > tags() context > settings defaults."""

    def test_defaults_from_settings(self, settings: Settings) -> None:
        """Outside any block, team and project come from settings and purpose is unspecified."""
        assert resolve_tags(settings) == ResolvedTags("platform", "core", "unspecified")
        assert DEFAULT_PURPOSE == "unspecified"

    def test_builtin_defaults(self) -> None:
        """Without LLM_DEFAULT_TEAM/PROJECT the built-in defaults apply."""
        resolved = resolve_tags(Settings.from_env({}))
        assert resolved == ResolvedTags("default", "nexus", "unspecified")

    def test_context_beats_defaults(self, settings: Settings) -> None:
        """A tags() block overrides the settings defaults."""
        with tags(team="ops", project="finops", purpose="report"):
            assert resolve_tags(settings) == ResolvedTags("ops", "finops", "report")

    def test_explicit_beats_context(self, settings: Settings) -> None:
        """Explicit arguments override the tags() block."""
        with tags(team="ops", project="finops", purpose="report"):
            resolved = resolve_tags(settings, team="ml", project="search", purpose="rank")
        assert resolved == ResolvedTags("ml", "search", "rank")

    def test_each_field_resolves_on_its_own(self, settings: Settings) -> None:
        """Explicit, context and default can each supply a different field."""
        with tags(project="finops"):
            resolved = resolve_tags(settings, purpose="triage")
        assert resolved == ResolvedTags("platform", "finops", "triage")

    def test_current_tags_outside_any_block(self) -> None:
        """Outside any block current_tags() has every field None."""
        assert current_tags() == Tags()


class TestNesting:
    """Inner blocks override outer ones field by field and restore on exit."""

    def test_inner_overrides_field_by_field(self, settings: Settings) -> None:
        """An inner block changes only the fields it sets."""
        with tags(team="ops", project="finops"), tags(purpose="alerting"):
            assert current_tags() == Tags("ops", "finops", "alerting")
            with tags(team="sre") as inner:
                assert inner == Tags("sre", "finops", "alerting")
                assert resolve_tags(settings) == ResolvedTags("sre", "finops", "alerting")

    def test_exit_restores_outer(self) -> None:
        """Leaving an inner block restores the outer block's tags, then none."""
        with tags(team="ops"):
            with tags(team="sre", purpose="x"):
                assert current_tags().team == "sre"
            assert current_tags() == Tags(team="ops")
        assert current_tags() == Tags()

    def test_exception_restores_outer(self) -> None:
        """A block left by an exception still restores the outer tags."""
        with tags(team="ops"):
            with pytest.raises(RuntimeError), tags(team="sre"):
                raise RuntimeError("boom")
            assert current_tags() == Tags(team="ops")
        assert current_tags() == Tags()


class TestValidation:
    """Bad tag values are ConfigErrors."""

    @pytest.mark.parametrize(
        "value", ["", "has space", "x" * 65, "semi;colon", "new\nline", "emoji-🙂"]
    )
    @pytest.mark.parametrize("field", ["team", "project", "purpose"])
    def test_invalid_block_value(self, field: str, value: str) -> None:
        """tags() rejects an invalid value, naming the field, and leaves the context alone."""
        with pytest.raises(ConfigError) as caught, tags(**{field: value}):
            pass
        assert caught.value.variable == field
        assert "\n" not in str(caught.value)
        assert current_tags() == Tags()

    @pytest.mark.parametrize("field", ["team", "project", "purpose"])
    def test_invalid_explicit_value(self, settings: Settings, field: str) -> None:
        """resolve_tags rejects an invalid explicit value."""
        with pytest.raises(ConfigError) as caught:
            resolve_tags(settings, **{field: "not valid"})
        assert caught.value.variable == field

    @pytest.mark.parametrize("value", ["a", "team-1", "org/team.sub_unit", "x" * 64])
    def test_valid_values(self, value: str) -> None:
        """Letters, digits, '.', '_', '-', '/' up to 64 characters are accepted."""
        with tags(team=value):
            assert current_tags().team == value


class TestThreads:
    """Tags do not leak between threads."""

    def test_threads_never_see_each_others_tags(self, settings: Settings) -> None:
        """Two threads in different blocks each resolve only their own tags, many times over."""
        barrier = threading.Barrier(2)
        seen: dict[str, set[ResolvedTags]] = {"a": set(), "b": set()}

        def work(name: str) -> None:
            with tags(team=f"team-{name}", project=f"proj-{name}"):
                barrier.wait()
                for _ in range(2_000):
                    seen[name].add(resolve_tags(settings))
                barrier.wait()

        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert seen["a"] == {ResolvedTags("team-a", "proj-a", "unspecified")}
        assert seen["b"] == {ResolvedTags("team-b", "proj-b", "unspecified")}

    def test_new_thread_starts_clean(self) -> None:
        """A thread started inside a block does not see the block's tags."""
        found: list[Tags] = []
        with tags(team="ops"):
            thread = threading.Thread(target=lambda: found.append(current_tags()))
            thread.start()
            thread.join(timeout=10)
        assert found == [Tags()]

    def test_thread_pool_does_not_inherit(self) -> None:
        """Work submitted to a plain ThreadPoolExecutor sees no tags."""
        with ThreadPoolExecutor(max_workers=2) as pool, tags(team="ops", purpose="batch"):
            result = pool.submit(current_tags).result(timeout=10)
        assert result == Tags()

    def test_carry_tags_takes_them_along(self, settings: Settings) -> None:
        """carry_tags(fn) runs fn in the pool with the caller's tags, then cleans up."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            with tags(team="ops", purpose="batch"):
                carried = pool.submit(carry_tags(lambda: resolve_tags(settings)))
                assert carried.result(timeout=10) == ResolvedTags("ops", "core", "batch")
            after = pool.submit(current_tags).result(timeout=10)
        assert after == Tags()

    def test_carry_tags_captures_at_wrap_time(self) -> None:
        """carry_tags binds the tags current when it wraps, not when the function runs."""
        with tags(team="first"):
            wrapped = carry_tags(current_tags)
        with tags(team="second"):
            assert wrapped().team == "first"
            assert current_tags().team == "second"

    def test_carry_tags_passes_arguments_and_keeps_name(self) -> None:
        """The wrapper passes arguments through and keeps the function's name."""

        def add(a: int, b: int = 0) -> int:
            return a + b

        wrapped = carry_tags(add)
        assert wrapped(2, b=3) == 5
        assert wrapped.__name__ == "add"


class TestAsyncio:
    """Tags follow asyncio tasks."""

    def test_task_created_in_block_inherits(self) -> None:
        """A task created inside a block sees the block's tags even after the block ends."""

        async def main() -> Tags:
            async def child() -> Tags:
                await asyncio.sleep(0)
                return current_tags()

            with tags(team="ops", project="finops"):
                task = asyncio.create_task(child())
            return await task

        assert asyncio.run(main()) == Tags(team="ops", project="finops")

    def test_task_change_does_not_leak_to_parent(self) -> None:
        """Tags set inside a task do not change the parent's tags."""

        async def main() -> tuple[Tags, Tags]:
            async def child() -> Tags:
                with tags(team="child"):
                    await asyncio.sleep(0)
                    return current_tags()

            with tags(team="parent"):
                inner = await asyncio.create_task(child())
                return inner, current_tags()

        inner, parent = asyncio.run(main())
        assert inner.team == "child"
        assert parent.team == "parent"

    def test_fifty_concurrent_tasks_stay_apart(self, settings: Settings) -> None:
        """50 gathered tasks, each in its own block, only ever see their own tags."""

        async def one(n: int) -> set[ResolvedTags]:
            seen: set[ResolvedTags] = set()
            with tags(team=f"team-{n}", purpose=f"p{n}"):
                for _ in range(5):
                    await asyncio.sleep(0)  # yield so the other tasks interleave
                    seen.add(resolve_tags(settings))
            return seen

        async def main() -> list[set[ResolvedTags]]:
            return await asyncio.gather(*(one(n) for n in range(50)))

        results = asyncio.run(main())
        assert results == [{ResolvedTags(f"team-{n}", "core", f"p{n}")} for n in range(50)]
