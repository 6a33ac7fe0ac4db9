"""The totals a set of generated submissions should land: per unit × month and per unit
(projects counted once each, as their latest report states them), exact (``Decimal``) over
the rows the ingester should load (``Submission.good_rows``)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ingestion.writers import Submission

MEASURES: tuple[str, ...] = (
    "activities",
    "participants",
    "party_member_participants",
    "problems_resolved",
    "suggestions_collected",
    "projects",
    "investment_yuan",
    "land_mu",
    "project_households_benefited",
    "collective_income_increase_yuan",
    "villager_income_increase_yuan",
    "produce_sold_tonnes",
    "produce_sales_yuan",
    "jobs_created",
    "households_benefited",
    "pairings",
)


def _zero() -> dict[str, Decimal]:
    return {m: Decimal(0) for m in MEASURES}


def _add(acc: dict[str, Decimal], key: str, value: Any) -> None:
    if value is not None:
        acc[key] += Decimal(value)


def month_totals(sub: Submission) -> dict[str, Decimal]:
    acc = _zero()
    acc["pairings"] += len(sub.good_rows("pairings"))
    for row in sub.good_rows("activities"):
        acc["activities"] += 1
        for m in ("participants", "party_member_participants", "problems_resolved", "suggestions_collected"):
            _add(acc, m, row[m])
    for row in sub.good_rows("projects"):
        _add_project(acc, row)
    for row in sub.good_rows("income_effects"):
        for m in (
            "collective_income_increase_yuan",
            "villager_income_increase_yuan",
            "produce_sold_tonnes",
            "produce_sales_yuan",
            "jobs_created",
            "households_benefited",
        ):
            _add(acc, m, row[m])
    return acc


def _add_project(acc: dict[str, Decimal], row: dict[str, Any]) -> None:
    acc["projects"] += 1
    _add(acc, "investment_yuan", row["investment_yuan"])
    _add(acc, "land_mu", row["land_mu"])
    _add(acc, "project_households_benefited", row["households_benefited"])


def unit_totals(subs: Sequence[Submission]) -> dict[str, Decimal]:
    """Sum over months, except projects: each project once, as its latest report states it."""
    acc = _zero()
    for sub in subs:
        month = month_totals(sub)
        for m in MEASURES:
            acc[m] += month[m]
    for m in ("projects", "investment_yuan", "land_mu", "project_households_benefited"):
        acc[m] = Decimal(0)
    latest: dict[str, dict[str, Any]] = {}
    for sub in sorted(subs, key=lambda s: s.period):
        for row in sub.good_rows("projects"):
            latest[row["project_code"]] = row
    for row in latest.values():
        _add_project(acc, row)
    return acc


def as_floats(acc: dict[str, Decimal]) -> dict[str, float]:
    return {m: round(float(acc[m]), 2) for m in MEASURES}
