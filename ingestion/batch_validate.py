"""Great Expectations over the rows of many files at once, problems back to their own rows.

GX's cost is mostly fixed per call, so a batch's rows are validated in one call per record kind
and the results split back per file and row. Pairings go first: a later file of the same unit
may reference pairings an earlier file of the batch registers, exactly as if the files had come
one at a time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import psycopg

from ingestion import audit
from ingestion.inflight import InFlight
from ingestion.staging import StagedChunk
from ingestion.validate import pairing_ref, validate_rows, with_row_parameters

__all__ = ["Item", "validate_batch", "validate_items"]

# (key of the file in the batch, the file, one staged chunk of it)
Item = tuple[int, InFlight, StagedChunk]


def validate_batch(conn: psycopg.Connection, batch: Sequence[InFlight]) -> None:
    """Validate the staged rows of every ready file of ``batch``: pairings first, then every
    other kind against the pairings known by then (warehouse + earlier files of the batch)."""
    ready = [(i, f) for i, f in enumerate(batch) if f.ready]
    units = {f.out.reporting_unit_code for _, f in ready}
    in_warehouse = audit.known_pairings(conn, units)
    conn.commit()
    pairings = [(i, f, s) for i, f in ready for s in f.staged if s.stage.kind.name == "pairings"]
    _by_kind(pairings, {})
    known: dict[int, set[str]] = {}
    registered: dict[str, set[str]] = {u: set(codes) for u, codes in in_warehouse.items()}
    for i, f in ready:
        unit = f.out.reporting_unit_code
        for s in f.staged:
            if s.stage.kind.name == "pairings":
                good, _ = s.good()
                registered[unit] |= set(good["pairing_code"])
        known[i] = set(registered[unit])
    others = [(i, f, s) for i, f in ready for s in f.staged if s.stage.kind.name != "pairings"]
    _by_kind(others, known)


def _by_kind(items: list[Item], known: dict[int, set[str]]) -> None:
    by_kind: dict[str, list[Item]] = {}
    for item in items:
        by_kind.setdefault(item[2].stage.kind.name, []).append(item)
    for same_kind in by_kind.values():
        validate_items(same_kind, known)


def validate_items(items: list[Item], known: dict[int, set[str]]) -> None:
    """One GX call over the ``ok`` rows of chunks of one kind; each problem goes back to its row.
    ``known``: the pairing codes each file (by key) may reference."""
    items = [item for item in items if not item[2].ok.empty]
    if not items:
        return
    t = time.perf_counter()
    kind = items[0][2].stage.kind.name
    frame = pd.concat([s.ok for _, _, s in items], ignore_index=True) if len(items) > 1 else items[0][2].ok
    sizes = np.array([len(s.ok) for _, _, s in items])
    periods = [f.meta.period if f.meta else None for _, f, _ in items]
    frame = with_row_parameters(
        frame.reset_index(drop=True),
        file_key=np.repeat([i for i, _, _ in items], sizes),
        period=np.repeat([p.code if p else None for p in periods], sizes),
        period_start=np.repeat([p.start if p else None for p in periods], sizes),
        period_end=np.repeat([p.end if p else None for p in periods], sizes),
    )
    refs = frozenset(pairing_ref(i, code) for i, codes in known.items() for code in codes)
    ends = np.cumsum(sizes)
    for pos, problem in validate_rows(kind, frame, dt.date.today(), refs):
        n = int(np.searchsorted(ends, pos, side="right"))
        staged = items[n][2]
        staged.add(staged.ok.index[pos - (ends[n] - sizes[n])], problem)
    share = (time.perf_counter() - t) / max(1, int(ends[-1]))
    for (_, f, _), size in zip(items, sizes.tolist(), strict=True):  # the call's time, shared out by rows
        f.out.timings["validate"] = f.out.timings.get("validate", 0.0) + share * size
