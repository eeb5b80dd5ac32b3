"""Check 5 — team / project tags reach the ledger and split the cost metric (seed §B.5).

Three calls, one per path a tag can take: explicit arguments; a `nexus_llm.tags(...)` block
carried into a worker thread; the same block around an asyncio task. OK when every ledger line
carries the requested team and project (not the defaults) and `nexus_llm_cost_usd_total` has a
series of its own for those labels.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import REGISTRY

import nexus_llm
from nexus_llm import AsyncClient, Client, NexusError, Response
from nexus_llm.observe.query import JsonlView

from .result import CheckResult

SEED_NG_HINT = (
    "only the defaults appear for team / project: check LLM_DEFAULT_TEAM / LLM_DEFAULT_PROJECT "
    "and that nexus_llm.tags(...) is entered where the call is made (threads need carry_tags)"
)
THRESHOLD = "every ledger line has the requested team/project; a separate cost series exists"


def run_tagging(
    client: Client,
    *,
    prompt: str,
    team: str,
    project: str,
    purpose: str,
    provider: str | None = None,
) -> CheckResult:
    result = CheckResult("tagging", threshold=THRESHOLD, hint=SEED_NG_HINT)
    settings = client.settings

    def explicit() -> Response:
        return client.generate(
            prompt, team=team, project=project, purpose=purpose, provider=provider, dedupe=False
        )

    def in_thread() -> Response:
        with nexus_llm.tags(team=team, project=project), ThreadPoolExecutor(1) as pool:
            work = nexus_llm.carry_tags(
                lambda: client.generate(prompt, purpose=purpose, provider=provider, dedupe=False)
            )
            return pool.submit(work).result()

    async def in_task() -> Response:
        async with AsyncClient(settings, pipeline=client.pipeline) as async_client:
            with nexus_llm.tags(team=team, project=project):
                task = asyncio.create_task(
                    async_client.generate(prompt, purpose=purpose, provider=provider, dedupe=False)
                )
            return await task

    try:
        responses = {
            "explicit tags": explicit(),
            "tags() in a thread": in_thread(),
            "tags() in an async task": asyncio.run(in_task()),
        }
    except NexusError as error:
        result.add("calls", False, " ".join(f"a call failed: {error}".split()))
        return result
    ledger = JsonlView(settings.cost_ledger_path)
    lines = {str(line.get("request_id")): line for line in ledger.recent()}
    defaults = (settings.default_team, settings.default_project)
    for path, response in responses.items():
        line = lines.get(response.request_id)
        got = (line.get("team"), line.get("project")) if line else None
        if got is None:
            result.add(path, False, f"no ledger line for request {response.request_id[:12]}")
        elif got == (team, project):
            result.add(path, True, f"ledger team={team} project={project}")
        else:
            shown = "the defaults" if got == defaults else "other tags"
            result.add(path, False, f"ledger has {shown}: team={got[0]} project={got[1]}")
    labels = {
        "provider": next(iter(responses.values())).provider,
        "team": team,
        "project": project,
        "purpose": purpose,
    }
    value = REGISTRY.get_sample_value("nexus_llm_cost_usd_total", labels)
    result.add(
        "cost metric",
        value is not None and value > 0,
        f"nexus_llm_cost_usd_total{{team={team!r}, project={project!r}, purpose={purpose!r}}} "
        + (f"= {value:.7f}" if value is not None else "has no series"),
    )
    result.measured = f"{sum(f.ok for f in result.findings)} of {len(result.findings)} found"
    return result
