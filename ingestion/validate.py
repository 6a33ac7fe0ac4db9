"""Row rules as Great Expectations suites, loaded from ``expectations/<kind>.json``.

``validate(kind, df, params)`` runs the kind's whole suite over a normalised chunk in one
``Batch.validate`` call and turns every failing (row, expectation) into a ``Problem``: the
expectation's ``meta.reason_code`` is the code, the row is the chunk's ``_row``.

The GX runtime (context, batch definition, suites, each kind's ``FramePlan``) is built once
per process by ``ingestion.suites`` on the first ``validate`` (or ``suites.warm_up()``).

Speed (``python -m ingestion.bench_validate`` measures it). Everything below keeps GX's pandas
metrics vectorised and changes no outcome; without it a million activity rows took ~5 s:

- GX sees a lean frame: the contract's columns, a fresh RangeIndex (so the failing indexes
  GX reports are positions; ``_row`` and the values in a Problem are read from the caller's
  frame), nullable ``Int64`` as ``int64``/``float64`` and dates as ``datetime64[ns]``: GX's
  "between" test vectorises only numpy int/float and nanosecond datetimes and maps a Python
  function over every row of anything else. A date outside the nanosecond range (a year
  typed as 0024) keeps its unit; GX then compares row by row, with the same answers.
- Columns with an in-set rule become categoricals, optional columns with only a lower bound
  get their nulls replaced by that bound (see ``suites._frame_plan``).
- In-set parameters are cut to the codes present in the chunk (same outcome, and GX's cost
  per call grows with the size of every parameter it serialises).
- GX's md5 fingerprint of every batch is switched off (``suites._skip_batch_fingerprint``).
- One ``Batch.validate`` per chunk for the whole suite, result format COMPLETE without the
  index query or the value lists. Failing rows are mapped through the positions, not with
  ``unexpected_index_column_names`` (GX builds that list with a Python lookup per cell).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingestion.contract import RECORD_KINDS, FieldType, RecordKind
from ingestion.problems import Problem
from ingestion.suites import (
    PAIRING_REF,
    PERIOD_END,
    PERIOD_START,
    ROW_PARAMETERS,
    FramePlan,
    describe,
    get_runtime,
    gx_lock,
)

# COMPLETE: every failing row's index, not the first 20. No index query string (a Python
# rendering of every failing index, unused here), no values in the lists we do not read.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
}

_NUMERIC = (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER)


@dataclass(frozen=True)
class ValidationParams:
    """What the rules need to know beyond the rows themselves."""

    period: str | None  # period code, e.g. 2024-06 or 2024Q2 (for messages); None: a registration
    period_start: dt.date | None
    period_end: dt.date | None  # inclusive
    known_pairings: frozenset[str]  # pairing codes registered for the reporting unit
    today: dt.date


# --------------------------------------------------------------------------- validation


def validate(kind: str, df: pd.DataFrame, params: ValidationParams) -> list[Problem]:
    """Every failing (row, expectation) of one file's rows ``df`` against the kind's suite,
    ordered by row."""
    return [p for _, p in validate_rows(kind, with_row_parameters(df, params), params.today, known_refs(params))]


def known_refs(params: ValidationParams, file_key: int = 0) -> frozenset[str]:
    return frozenset(pairing_ref(file_key, code) for code in params.known_pairings)


def pairing_ref(file_key: int, code: str) -> str:
    """How a row names its pairing for R009: its file, then the code (files of many units in one call)."""
    return f"{file_key}\x1f{code}"


def with_row_parameters(
    df: pd.DataFrame,
    params: ValidationParams | None = None,
    *,
    file_key: int | np.ndarray = 0,
    period: str | np.ndarray | None = None,
    period_start: dt.date | np.ndarray | None = None,
    period_end: dt.date | np.ndarray | None = None,
) -> pd.DataFrame:
    """``df`` with its row parameters: each row's file (with its pairing code: ``_pairing_ref``)
    and its file's report period. Scalars for the rows of one file, arrays for many."""
    if params is not None:
        period, period_start, period_end = params.period, params.period_start, params.period_end
    n = len(df)
    out = df.copy(deep=False)
    if "pairing_code" in df.columns:
        out[PAIRING_REF] = _pairing_refs(df["pairing_code"], file_key, n)
    out[PERIOD_START] = _dates(period_start, n)
    out[PERIOD_END] = _dates(period_end, n)
    out["_period"] = np.broadcast_to(np.asarray(period, dtype=object), n)
    return out


def _pairing_refs(codes: pd.Series, file_key: int | np.ndarray, n: int) -> pd.Categorical:
    """'<file>\\x1f<code>' per row, as a categorical built from the distinct pairs only (a million
    rows of a few pairings cost a factorize, not a million string concatenations)."""
    code_ids, code_values = pd.factorize(codes.to_numpy(dtype=object), use_na_sentinel=True)
    keys = np.asarray(file_key)
    if keys.ndim == 0:
        names = [pairing_ref(int(keys), str(c)) for c in code_values]
        return pd.Categorical.from_codes(code_ids, categories=names, validate=False)
    key_ids, key_values = pd.factorize(keys)
    width = max(1, len(code_values))
    pair = np.where(code_ids < 0, -1, key_ids.astype(np.int64) * width + code_ids)
    pair_ids, pairs = pd.factorize(pair, use_na_sentinel=True)
    pair_ids = np.where(pair < 0, -1, pair_ids)
    names = [pairing_ref(int(key_values[p // width]), str(code_values[p % width])) if p >= 0 else "" for p in pairs]
    return pd.Categorical.from_codes(pair_ids, categories=names, validate=False)


def _dates(value: dt.date | np.ndarray | None, n: int) -> np.ndarray:
    if value is None:
        return np.full(n, np.datetime64("NaT", "ns"))
    if isinstance(value, np.ndarray):
        return pd.to_datetime(pd.Series(value)).to_numpy(dtype="datetime64[ns]")
    return np.full(n, np.datetime64(value, "ns"))


def validate_rows(
    kind: str, df: pd.DataFrame, today: dt.date, known_pairing_refs: frozenset[str]
) -> list[tuple[int, Problem]]:
    """Every failing (row, expectation) of ``df`` — the rows of one file or of many, each with
    its row parameters (``with_row_parameters``) — as (position in ``df``, problem), ordered by
    position. One GX call whatever the number of files."""
    record = RECORD_KINDS[kind]
    missing = [c for c in (*record.field_names, "_row", *ROW_PARAMETERS) if c not in df.columns]
    if missing:
        raise ValueError(f"validate({kind!r}): the frame lacks columns {missing}")
    rt = get_runtime()
    if len(df) == 0:
        return []
    plan = rt.plans[kind]
    frame = _frame_for_gx(record, df, plan)
    values = suite_parameters(today, known_pairing_refs)
    for name, columns in plan.set_parameters.items():
        # GX serialises every metric's kwargs, value sets included, dozens of times per run:
        # 10,000 known pairings cost ~1 s per call. Only the codes present can matter.
        present = set().union(*(frame[c].cat.categories for c in columns))
        values[name] = [v for v in values[name] if v in present]
    with gx_lock:
        batch = rt.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(rt.suites[kind], result_format=RESULT_FORMAT, expectation_parameters=values)
    return _problems(record, df, result)


def suite_parameters(today: dt.date, known_pairing_refs: frozenset[str]) -> dict[str, Any]:
    """The values of the suites' ``$PARAMETER`` references for one validation run."""
    # a datetime, not a date: pandas refuses to compare a Timestamp with a date
    return {"today": dt.datetime.combine(today, dt.time.min), "known_pairing_refs": sorted(known_pairing_refs)}


def _frame_for_gx(record: RecordKind, df: pd.DataFrame, plan: FramePlan) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for f in record.fields:
        s = df[f.name]
        if f.type in _NUMERIC:
            columns[f.name] = _as_numpy_number(s, plan.fill.get(f.name))
        elif f.type == FieldType.DATE:
            columns[f.name] = _as_ns_dates(s)
        elif f.name in plan.categorical:
            columns[f.name] = _as_categorical(s)
        else:
            columns[f.name] = s.array
    for name in ROW_PARAMETERS:
        columns[name] = _as_categorical(df[name]) if name in plan.categorical else df[name].array
    return pd.DataFrame(columns, index=pd.RangeIndex(len(df)), copy=False)


def _as_numpy_number(s: pd.Series, fill: float | None = None) -> np.ndarray:
    if fill is not None and s.hasnans:
        s = s.fillna(fill)
    # GX vectorises a column whose dtype == int or == float: numpy int64 / float64 only
    if s.dtype == np.dtype("int64") or s.dtype == np.dtype("float64"):
        return s.to_numpy()
    if pd.api.types.is_signed_integer_dtype(s.dtype) and not s.hasnans:
        return s.to_numpy(dtype="int64")
    return s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def _as_ns_dates(s: pd.Series) -> Any:
    if not pd.api.types.is_datetime64_dtype(s.dtype):
        s = pd.to_datetime(s)
    if s.dtype == "datetime64[ns]":
        return s.array
    try:
        return s.astype("datetime64[ns]").array
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        return s.array  # GX compares row by row: slower, same outcome


def _as_categorical(s: pd.Series) -> pd.Categorical:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.array
    # factorize the object values: faster than on the str dtype, same codes; nulls -> -1
    codes, uniques = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    return pd.Categorical.from_codes(codes, categories=uniques, validate=False)


def _problems(record: RecordKind, df: pd.DataFrame, result: Any) -> list[tuple[int, Problem]]:
    field_order = {name: i for i, name in enumerate(record.field_names)}
    found: list[tuple[int, int, str, Problem]] = []
    seen: set[tuple[int, str]] = set()  # R010 comes from two expectations: a row is outside once
    for res in result.results:
        config = res.expectation_config
        raise_if_gx_failed(res, config)
        if res.success:
            continue
        meta = config.meta or {}
        code = meta["reason_code"]
        kwargs = config.kwargs
        column = meta.get("column") or kwargs.get("column")
        other_column = meta.get("other_column")
        positions = res.result.get("unexpected_index_list")
        if positions is None or len(positions) != res.result.get("unexpected_count"):
            raise RuntimeError(
                f"GX expectation {describe(config)} failed without reporting all its failing rows: {res.result}"
            )
        pos = np.asarray(positions, dtype=np.int64)
        rows = df["_row"].iloc[pos].tolist()
        sheets = df["_sheet"].iloc[pos].tolist() if "_sheet" in df.columns else [None] * len(pos)
        values = df[column].iloc[pos].tolist()
        others = df[other_column].iloc[pos].tolist() if other_column else [None] * len(pos)
        column_zh = record.get(column).header_zh
        for i in range(len(pos)):
            if (int(pos[i]), code) in seen:
                continue
            seen.add((int(pos[i]), code))
            problem = Problem.make(
                code,
                sheet=_text(sheets[i]),
                row=int(rows[i]),
                column=column,
                value=None if code == "R001_REQUIRED_MISSING" else _text(values[i]),
                column_zh=column_zh,
                other=_text(others[i]),
                **_row_params(code, df, int(pos[i])),
            )
            found.append((int(pos[i]), field_order[column], code, problem))
    # GX returns results grouped by column, not in suite order: sort for a stable report
    found.sort(key=lambda t: t[:3])
    return [(t[0], t[3]) for t in found]


def _row_params(code: str, df: pd.DataFrame, pos: int) -> dict[str, Any]:
    """What a message says beyond the row itself: the period of the row's file (R010)."""
    if code != "R010_DATE_OUTSIDE_PERIOD":
        return {}
    start, end = df[PERIOD_START].iloc[pos], df[PERIOD_END].iloc[pos]
    return {
        "period": df["_period"].iloc[pos] if "_period" in df.columns else None,
        "start": pd.Timestamp(start).date().isoformat(),
        "end": pd.Timestamp(end).date().isoformat(),
    }


def raise_if_gx_failed(res: Any, config: Any) -> None:
    """GX catches an exception inside an expectation and reports it as a failed result.

    ``exception_info`` is either ``{"raised_exception": ..., "exception_message": ...}`` or,
    when a metric failed, a dict of those keyed by metric id. Either way: raise.
    """
    info = res.exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            raise RuntimeError(f"GX expectation {describe(config)} raised: {entry.get('exception_message')}")


def _text(value: Any) -> str | None:
    """A value as text for a Problem: dates as ISO dates, whole floats without '.0'."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, pd.Timestamp | dt.datetime):
        if value.hour == value.minute == value.second == value.microsecond == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)
