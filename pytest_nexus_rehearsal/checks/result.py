"""The outcome of one check: what was looked at, what was found, and what to do about NG."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class CheckResult:
    check: str
    findings: list[Finding] = field(default_factory=list)
    measured: str = ""
    threshold: str = ""
    hint: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.findings.append(Finding(name, ok, detail))
        return ok

    @property
    def evidence(self) -> str:
        return "; ".join(f"{f.name}: {f.detail}" for f in self.findings)

    def render(self, *, header: str) -> str:
        width = max((len(f.name) for f in self.findings), default=0)
        lines = [header]
        lines += [
            f"  [{'OK' if f.ok else 'NG'}] {f.name.ljust(width)}  {f.detail}" for f in self.findings
        ]
        verdict = "OK" if self.ok else "NG"
        lines.append(f"{self.check.upper()} {verdict}")
        if not self.ok and self.hint:
            lines.append(f"  what to check: {self.hint}")
        return "\n".join(lines)
