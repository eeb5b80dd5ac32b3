"""Test outcomes → scorecard rows → stage verdicts → markdown (jinja2) and a JSON twin.

Pure data in, text out: the plugin feeds it reports, `nexus autoscore` can feed it log findings.
Status precedence within a row, worst first: FAIL, ERROR, INCONCLUSIVE, PASS, MANUAL, NOT RUN.
A test that passed without recording evidence is INCONCLUSIVE: no data is not a pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # jinja2 loads only when a scorecard is rendered
    import jinja2

from .checklist import CHECKLIST, STAGE_TITLES, ChecklistItem

PASS, FAIL, ERROR, INCONCLUSIVE, MANUAL, NOT_RUN = (
    "PASS",
    "FAIL",
    "ERROR",
    "INCONCLUSIVE",
    "MANUAL",
    "NOT RUN",
)
_PRECEDENCE: Final = (FAIL, ERROR, INCONCLUSIVE, PASS, MANUAL, NOT_RUN)
STAGE_VERDICT_NAMES: Final = {
    "smoke": "smoke pass",
    "ops": "operations pass",
    "day1": "release pass",
}
TEMPLATE_NAME: Final = "REHEARSAL_SCORECARD.md"


@dataclass(slots=True)
class TestOutcome:
    """One test's contribution to a row."""

    nodeid: str
    row: str
    status: str
    measured: str = ""
    threshold: str = ""
    evidence: str = ""
    hint: str = ""
    detail: str = ""  # failure message, skip reason, manual instructions


@dataclass(slots=True)
class Row:
    item: ChecklistItem
    status: str = NOT_RUN
    measured: str = ""
    threshold: str = ""
    evidence: str = ""
    what_to_check: str = ""
    tests: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class StageVerdict:
    stage: str
    title: str
    name: str
    verdict: str  # PASS | FAIL | INCOMPLETE
    summary: str


@dataclass(slots=True)
class Scorecard:
    header: dict[str, str]
    rows: list[Row]
    stages: list[StageVerdict]
    verdict: str

    def to_json(self) -> str:
        data = {
            "header": self.header,
            "rows": [
                {
                    "row": r.item.row,
                    "stage": r.item.stage,
                    "title": r.item.title,
                    "status": r.status,
                    "measured": r.measured,
                    "threshold": r.threshold,
                    "evidence": r.evidence,
                    "what_to_check": r.what_to_check,
                    "detail": r.detail,
                    "tests": r.tests,
                }
                for r in self.rows
            ],
            "stages": [asdict(s) for s in self.stages],
            "verdict": self.verdict,
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def build_scorecard(outcomes: Iterable[TestOutcome], header: Mapping[str, str]) -> Scorecard:
    rows = {item.row: Row(item, threshold=item.ok_when) for item in CHECKLIST}
    for outcome in outcomes:
        row = rows.get(outcome.row)
        if row is None:
            continue
        row.tests.append(outcome.nodeid)
        if _PRECEDENCE.index(outcome.status) <= _PRECEDENCE.index(row.status):
            row.status = outcome.status
            row.measured = outcome.measured or row.measured
            row.threshold = outcome.threshold or row.threshold
            row.evidence = outcome.evidence or row.evidence
            row.detail = outcome.detail
            if outcome.status in (FAIL, ERROR, INCONCLUSIVE):
                row.what_to_check = outcome.hint or row.item.ng_hint
    ordered = [rows[item.row] for item in CHECKLIST]
    stages = [
        _stage_verdict(stage, [r for r in ordered if r.item.stage == stage])
        for stage in STAGE_TITLES
    ]
    return Scorecard(dict(header), ordered, stages, _overall(stages, ordered))


def _stage_verdict(stage: str, rows: list[Row]) -> StageVerdict:
    passed = sum(r.status == PASS for r in rows)
    failed = [r.item.row for r in rows if r.status in (FAIL, ERROR)]
    if failed:
        verdict = "FAIL"
    elif passed == len(rows):
        verdict = "PASS"
    else:
        verdict = "INCOMPLETE"
    summary = f"{passed} of {len(rows)} rows PASS"
    if failed:
        summary += f"; row(s) {', '.join(failed)} failed"
    return StageVerdict(stage, STAGE_TITLES[stage], STAGE_VERDICT_NAMES[stage], verdict, summary)


def _overall(stages: list[StageVerdict], rows: list[Row]) -> str:
    if all(r.status == NOT_RUN for r in rows):
        return "NO DATA — no rehearsal check ran"
    if any(s.verdict == "FAIL" for s in stages):
        return "FAIL — " + "; ".join(f"{s.name}: {s.verdict}" for s in stages)
    reached = [s.name for s in stages if s.verdict == "PASS"]
    if len(reached) == len(stages):
        return "PASS — release pass"
    return "INCOMPLETE — " + "; ".join(f"{s.name}: {s.verdict}" for s in stages)


def load_template(path: Path | None = None) -> jinja2.Template:
    """The scorecard form: a user's replacement, or the one shipped in the package."""
    import jinja2

    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 - markdown output, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = _cell
    if path is not None:
        return env.from_string(path.read_text("utf-8"))
    from nexus_llm.templates_shipped import shipped_template  # keeps plugin import light

    return env.from_string(shipped_template(TEMPLATE_NAME))


def render_markdown(card: Scorecard, template: jinja2.Template | None = None) -> str:
    template = template or load_template()
    return template.render(
        header=card.header, rows=card.rows, stages=card.stages, verdict=card.verdict
    )


def _cell(value: object) -> str:
    """Make text safe inside a markdown table cell."""
    text = str(value or "").replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if text.strip() else "—"


def write_scorecard(card: Scorecard, path: Path, template_path: Path | None = None) -> Path:
    """Write the markdown and its JSON twin (`out.md` → `out.json`); returns the JSON path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(card, load_template(template_path)), "utf-8")
    twin = path.with_suffix(".json") if path.suffix != ".json" else path.with_suffix(".json.json")
    twin.write_text(card.to_json(), "utf-8")
    return twin
