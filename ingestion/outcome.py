"""What became of one file: the one outcome type of every entry point (CLI, demo, Airflow)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingestion.problems import Problem


@dataclass
class FileOutcome:
    file: str
    status: str  # loaded | rejected | duplicate
    submission_id: int | None = None
    file_hash: str | None = None
    reporting_unit_code: str | None = None
    period: str | None = None
    record_kinds: list[str] = field(default_factory=list)
    rows_received: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    kind_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)  # file-level (rejected) or row-level problems
    warnings: list[Problem] = field(default_factory=list)
    normalisations: list[Problem] = field(default_factory=list)
    duplicate_of: int | None = None
    reprocess_of: int | None = None  # the original receipt this run re-ran (pairstats reprocess)
    encoding: str | None = None
    file_format: str | None = None  # what the file is (xlsx, xls, ods, csv, tsv, json), whatever its name
    # record kind -> the submission this file replaces as the current version (a correction)
    supersedes: dict[str, int] = field(default_factory=dict)
    # record kind -> a later submission that stays current (an old file re-run after a correction)
    superseded_by: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "submission_id": self.submission_id,
            "file_hash": self.file_hash,
            "reporting_unit_code": self.reporting_unit_code,
            "period": self.period,
            "record_kinds": self.record_kinds,
            "rows_received": self.rows_received,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "kind_counts": self.kind_counts,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
            "normalisations": [p.to_dict() for p in self.normalisations],
            "duplicate_of": self.duplicate_of,
            "reprocess_of": self.reprocess_of,
            "encoding": self.encoding,
            "file_format": self.file_format,
            "supersedes": self.supersedes,
            "superseded_by": self.superseded_by,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def brief(self) -> dict[str, Any]:
        """A bounded summary (for XCom and run summaries): counts and codes, never every row
        problem: a file with 100,000 bad rows gives a handful of codes and their counts."""
        codes = Counter(p.code for p in self.errors)
        return {
            "file": self.file,
            "status": self.status,
            "submission_id": self.submission_id,
            "reporting_unit_code": self.reporting_unit_code,
            "period": self.period,
            "rows_received": self.rows_received,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "codes": dict(sorted(codes.items())),
            "refusal": [p.to_dict() for p in self.errors[:3]] if self.status == "rejected" else [],
            "warnings": len(self.warnings),
            "duplicate_of": self.duplicate_of,
            "reprocess_of": self.reprocess_of,
        }
