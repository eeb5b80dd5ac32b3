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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def _checked(name: str, value: str | None) -> str | None:
    if value is not None and not label_is_valid(value):
        raise ConfigError(name, value, "1-64 characters of letters, digits, '.', '_', '-' or '/'")
    return value


@contextmanager
def tags(
    *, team: str | None = None, project: str | None = None, purpose: str | None = None
) -> Iterator[Tags]:
    """Tag every call made inside the block; inner blocks override outer ones field by field."""
    outer = _current.get()
    inner = Tags(
        team=_checked("team", team) or outer.team,
        project=_checked("project", project) or outer.project,
        purpose=_checked("purpose", purpose) or outer.purpose,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


def current_tags() -> Tags:
    """The tags set by the enclosing `tags(...)` blocks (fields are None where unset)."""
    return _current.get()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def carry_tags(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Bind the caller's current tags to `fn`, for work submitted to threads or executors."""
    captured = _current.get()

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        token = _current.set(captured)
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
