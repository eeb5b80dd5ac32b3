"""Reading the per-process metric files of `PROMETHEUS_MULTIPROC_DIR`, damage and all.

A process killed mid-write can leave a truncated `.db` file; prometheus-client's collector
then fails every scrape. This one merges the readable files and skips (and counts) the rest,
so one dead worker never blinds the whole dashboard.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector


class TolerantMultiProcessCollector:
    def __init__(self, path: str) -> None:
        self._path = path
        self.skipped: list[str] = []

    def collect(self) -> Iterable[Metric]:
        files = sorted(glob.glob(os.path.join(self._path, "*.db")))
        try:
            return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]
        except Exception:  # any damage in any file: find the readable ones
            good: list[str] = []
            self.skipped = []
            for name in files:
                try:
                    MultiProcessCollector.merge([name], accumulate=True)  # type: ignore[no-untyped-call]
                except Exception:  # this file is the damaged one
                    self.skipped.append(name)
                else:
                    good.append(name)
            return MultiProcessCollector.merge(good, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]
