"""Who a call is for: team, project and purpose.

Resolution order for each tag: an explicit argument to the call, else the innermost
`nexus_llm.tags(...)` block around it, else `LLM_DEFAULT_TEAM` / `LLM_DEFAULT_PROJECT` (and
`"unspecified"` for purpose).

The context lives in a `contextvars.ContextVar`, so it follows the code that set it:
asyncio tasks inherit it when they are created, and each thread starts clean (a tag set in one
request thread never leaks into another). Work handed to a thread pool does not inherit context
in Python; wrap it with `carry_tags(fn)` to take the caller's tags along.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from .config import Settings, label_is_valid
from .errors import ConfigError

DEFAULT_PURPOSE = "unspecified"


@dataclass(frozen=True, slots=True)
class Tags:
    team: str | None = None
    project: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedTags:
    team: str
    project: str
    purpose: str


_current: contextvars.ContextVar[Tags] = contextvars.ContextVar(
    "nexus_llm_tags",
    default=Tags(),  # noqa: B039 - Tags is frozen, so sharing it is safe
)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _checked(name: str, value: str | None) -> str | None:
    if value is not None and not label_is_valid(value):
        raise ConfigError(name, value, "1-64 characters of letters, digits, '.', '_', '-' or '/'")
    return value


class TagScope:
    """What `tags(...)` returns: a `with` block, or a decorator for sync and async functions.

    As a decorator the tags apply each time the function runs (inside the coroutine, for an
    `async def`), merged over whatever tags are current at that moment.
    """

    __slots__ = ("_fields", "_tokens")

    def __init__(self, team: str | None, project: str | None, purpose: str | None) -> None:
        self._fields = Tags(
            team=_checked("team", team),
            project=_checked("project", project),
            purpose=_checked("purpose", purpose),
        )
        self._tokens: list[contextvars.Token[Tags]] = []

    def __enter__(self) -> Tags:
        inner = _merged(self._fields, _current.get())
        self._tokens.append(_current.set(inner))
        return inner

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, fn: Callable[_P, _R]) -> Callable[_P, _R]:
        fields = self._fields
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: _P.args, **kwargs: _P.kwargs) -> object:
                with TagScope(fields.team, fields.project, fields.purpose):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with TagScope(fields.team, fields.project, fields.purpose):
                return fn(*args, **kwargs)

        return run


def tags(
    *, team: str | None = None, project: str | None = None, purpose: str | None = None
) -> TagScope:
    """Tag every call made inside the block; inner blocks override outer ones field by field.

    Use as `with nexus_llm.tags(team="ops"):` or as a decorator on a function or coroutine.
    """
    return TagScope(team, project, purpose)


def _merged(inner: Tags, outer: Tags) -> Tags:
    return Tags(
        team=inner.team or outer.team,
        project=inner.project or outer.project,
        purpose=inner.purpose or outer.purpose,
    )


def current_tags() -> Tags:
    """The tags set by the enclosing `tags(...)` blocks (fields are None where unset)."""
    return _current.get()


def carry_tags(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Take the tags current *now* along with `fn`, for work handed to a thread or executor.

    Call it where the work is submitted — `pool.submit(carry_tags(work), item)` — not as a
    decorator on a definition: it captures the tags at the moment it is called. Fields the
    captured tags leave unset fall back to the running thread's own.
    """
    captured = _current.get()

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        token = _current.set(_merged(captured, _current.get()))
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run


def resolve_tags(
    settings: Settings,
    *,
    team: str | None = None,
    project: str | None = None,
    purpose: str | None = None,
) -> ResolvedTags:
    """Apply the resolution order: explicit > context > settings defaults."""
    ctx = _current.get()
    return ResolvedTags(
        team=_checked("team", team) or ctx.team or settings.default_team,
        project=_checked("project", project) or ctx.project or settings.default_project,
        purpose=_checked("purpose", purpose) or ctx.purpose or DEFAULT_PURPOSE,
    )
