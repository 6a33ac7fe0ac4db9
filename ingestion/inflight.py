"""A file between receiving and loading: what the pipeline knows of it so far.

``InFlight`` is the state one file carries through ``ingestion.pipeline`` (receive → read →
stage → validate → load → audit); ``timed``/``timed_call`` add each step's time to the file's
``FileOutcome.timings``; ``Abort`` refuses the whole file from inside its transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.archive import Received
from ingestion.metadata import Metadata
from ingestion.outcome import FileOutcome
from ingestion.problems import Problem
from ingestion.read import ReadResult
from ingestion.staging import StagedChunk, TableStage

__all__ = ["Abort", "InFlight", "timed", "timed_call"]


@dataclass
class InFlight:
    """One file of a batch (or streamed), between reading and loading."""

    path: Path
    received: Received
    out: FileOutcome
    size: int = 0
    archive_path: Path | None = None
    meta: Metadata | None = None
    result: ReadResult | None = None
    refusal: Problem | None = None
    stages: list[TableStage] = field(default_factory=list)
    staged: list[StagedChunk] = field(default_factory=list)
    t0: float = 0.0
    recorded: bool = False  # this run recorded the file already: ``out`` is that outcome

    @property
    def ready(self) -> bool:
        return self.out.status == "loaded" and self.refusal is None and not self.recorded

    def close(self) -> None:
        """Let go of the open file and the rows held for the batch."""
        if self.result is not None:
            self.result.close()
        self.staged = []


class Abort(Exception):
    """The whole file is refused (raised inside its transaction, which then rolls back)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message_en)
        self.problem = problem


def timed(out: FileOutcome, stage_name: str, items: Iterator[Any]) -> Iterator[Any]:
    """Yield from ``items``, adding the time spent producing each to ``out.timings[stage_name]``."""
    while True:
        t = time.perf_counter()
        item = next(items, None)
        out.timings[stage_name] = out.timings.get(stage_name, 0.0) + time.perf_counter() - t
        if item is None:
            return
        yield item


def timed_call(out: FileOutcome, stage_name: str, fn: Any, *args: Any) -> Any:
    t = time.perf_counter()
    try:
        return fn(*args)
    finally:
        out.timings[stage_name] = out.timings.get(stage_name, 0.0) + time.perf_counter() - t
