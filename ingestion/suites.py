"""The Great Expectations runtime of a process: one ephemeral Data Context, a pandas data
source with one dataframe asset and a whole-dataframe batch definition, and the four row
suites loaded from ``expectations/<kind>.json`` (checked against the contract as they load).

Importing GX takes seconds, so nothing of GX is imported with this module: the first
``get_runtime()`` (or ``warm_up()``) imports it and builds the runtime; later calls reuse it.
``FramePlan`` is what a suite says about laying a kind's columns out for GX (see
``_frame_plan``); ``ingestion.validate`` runs the suites.

The suites are generated from ``ingestion/contract.py`` by ``expectations/build_suites.py``;
``PAIRSTATS_EXPECTATIONS_DIR`` points at another folder of suites.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.contract import RECORD_KINDS
from ingestion.problems import CATALOG

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import EphemeralDataContext

EXPECTATIONS_ENV = "PAIRSTATS_EXPECTATIONS_DIR"
# columns added to every row before validation, named by the suites (expectations/build_suites.py)
PAIRING_REF = "_pairing_ref"
PERIOD_START = "_period_start"
PERIOD_END = "_period_end"
ROW_PARAMETERS = (PAIRING_REF, PERIOD_START, PERIOD_END)
DEFAULT_EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"
SUITE_PREFIX = "pairstats_"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FramePlan:
    """How to lay out a kind's columns for GX, derived from its suite when it is loaded."""

    categorical: frozenset[str]  # columns with an in-set expectation
    set_parameters: dict[str, tuple[str, ...]]  # in-set $PARAMETER name -> the columns tested against it
    fill: dict[str, float]  # optional column only checked against a lower bound -> that bound


@dataclass
class Runtime:
    context: EphemeralDataContext
    batch_definition: BatchDefinition
    suites: dict[str, ExpectationSuite]  # record kind -> suite
    plans: dict[str, FramePlan]  # record kind -> frame layout
    folder: Path


_runtime: Runtime | None = None
gx_lock = threading.RLock()  # one GX run at a time: the data source's engine is shared


# --------------------------------------------------------------------------- set-up


def expectations_dir() -> Path:
    configured = os.environ.get(EXPECTATIONS_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_EXPECTATIONS_DIR


def warm_up() -> None:
    """Import GX, create the context and load the suites now rather than on first use."""
    get_runtime()


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with gx_lock:
            if _runtime is None:
                _runtime = _create_runtime(expectations_dir())
    return _runtime


def quiet_gx() -> None:
    # No usage statistics; the context config below says so too.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _create_runtime(folder: Path) -> Runtime:
    quiet_gx()
    with warnings.catch_warnings():
        # GX imports the deprecated sre_constants / sre_parse modules
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

    config = DataContextConfig(
        # in memory only; the default would create a temporary data-docs site on disk
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        # GX draws a tqdm "Calculating Metrics" bar on stderr for every suite run
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    _skip_batch_fingerprint()
    context = gx.get_context(mode="ephemeral", project_config=config)
    datasource = context.data_sources.add_pandas("pairstats_rows")
    asset = datasource.add_dataframe_asset("normalised_rows")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_chunk")
    suites = {kind: _load_suite(gx, folder, kind) for kind in RECORD_KINDS}
    plans = {kind: _frame_plan(suite) for kind, suite in suites.items()}
    return Runtime(context=context, batch_definition=batch_definition, suites=suites, plans=plans, folder=folder)


def _skip_batch_fingerprint() -> None:
    """Stop GX hashing every dataframe it is given.

    On each batch load the pandas engine stores an md5 of the whole frame
    (``pd.util.hash_pandas_object``) in the batch markers, unless the frame's memory usage is
    above ``HASH_THRESHOLD`` (1 GB). Nothing reads that fingerprint here, and it cost more than
    the validation itself: ~0.24 s per million rows, twice per ``Batch.validate`` (the batch
    is loaded by ``get_batch`` and again by the validator). A threshold of 0 skips it.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        log.warning("GX no longer has pandas_execution_engine.HASH_THRESHOLD; batches will be hashed")
        return
    pandas_execution_engine.HASH_THRESHOLD = 0


def _load_suite(gx: Any, folder: Path, kind: str) -> ExpectationSuite:
    path = folder / f"{kind}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read GX suite {path}: {exc}") from exc
    suite = gx.ExpectationSuite(**data)
    # ExpectationSuite(...) logs and DROPS an expectation whose configuration is invalid;
    # a suite that lost a rule must not load.
    if len(suite.expectations) != len(data.get("expectations", [])):
        raise RuntimeError(
            f"GX suite {path}: {len(data.get('expectations', []))} expectations in the file, "
            f"{len(suite.expectations)} valid; regenerate with expectations/build_suites.py"
        )
    if suite.name != f"{SUITE_PREFIX}{kind}":
        raise RuntimeError(f"GX suite {path} is named {suite.name!r}, expected {SUITE_PREFIX}{kind!r}")
    fields = set(RECORD_KINDS[kind].field_names)
    for exp in suite.expectations:
        meta = exp.meta or {}
        code = meta.get("reason_code")
        if code not in CATALOG:
            raise RuntimeError(f"GX suite {path}: {exp.expectation_type} has no known meta.reason_code ({code!r})")
        config = exp.configuration
        named = [config.kwargs.get(k) for k in ("column", "column_A", "column_B")] + [
            meta.get("column"),
            meta.get("other_column"),
        ]
        unknown = [c for c in named if c is not None and c not in fields and c not in ROW_PARAMETERS]
        if unknown:
            raise RuntimeError(
                f"GX suite {path}: {describe(config)} names {unknown}, not fields of {kind} in contract.py; "
                "regenerate with expectations/build_suites.py"
            )
    return suite


def _frame_plan(suite: ExpectationSuite) -> FramePlan:
    """Which columns GX gets as categoricals, and which get their nulls filled.

    - A column with an in-set expectation becomes a categorical: GX calls ``isna`` on it
      several times per expectation, which is free on a categorical and costs ~16 ms per
      million rows on a ``str`` column.
    - A column whose only expectations are lower bounds (an optional count or amount: no
      not-null rule, no pair rule) gets its nulls replaced by that bound. GX drops a
      column's nulls before a "between" test with ``df[df[col].notnull()]``, which copies
      every column of the frame unless nothing is null; a null and the bound both pass the
      test, so the outcome is the same and the copy is avoided.
    """
    uses: dict[str, list[Any]] = {}
    in_conditions: set[str] = set()  # a null there is what a row condition may test: never filled
    for exp in suite.expectations:
        config = exp.configuration
        for key in ("column", "column_A", "column_B"):
            if key in config.kwargs:
                uses.setdefault(config.kwargs[key], []).append(config)
        in_conditions |= _condition_columns(config.kwargs.get("row_condition"))
    categorical = {
        c for c, configs in uses.items() if any(x.type == "expect_column_values_to_be_in_set" for x in configs)
    }
    fill: dict[str, float] = {}
    for column, configs in uses.items():
        bounds = [
            x.kwargs.get("min_value")
            for x in configs
            if x.type == "expect_column_values_to_be_between"
            and x.kwargs.get("max_value") is None
            and not x.kwargs.get("strict_min")
            and not x.kwargs.get("row_condition")
        ]
        if column in in_conditions:
            continue
        if len(bounds) == len(configs) and all(isinstance(b, int | float) for b in bounds):
            fill[column] = float(max(bounds))
    set_parameters: dict[str, tuple[str, ...]] = {}
    for exp in suite.expectations:
        config = exp.configuration
        value_set = config.kwargs.get("value_set")
        if config.type == "expect_column_values_to_be_in_set" and isinstance(value_set, dict):
            name = value_set["$PARAMETER"]
            set_parameters[name] = (*set_parameters.get(name, ()), config.kwargs["column"])
    return FramePlan(categorical=frozenset(categorical), fill=fill, set_parameters=set_parameters)


def _condition_columns(condition: Any) -> set[str]:
    """The columns a row condition (GX's serialised form, or its objects) names."""
    if condition is None or isinstance(condition, str):
        return set()
    if hasattr(condition, "model_dump"):
        condition = condition.model_dump()
    elif hasattr(condition, "dict"):
        condition = condition.dict()
    found: set[str] = set()
    if isinstance(condition, dict):
        column = condition.get("column")
        if isinstance(column, dict) and "name" in column:
            found.add(column["name"])
        for part in condition.get("conditions") or ():
            found |= _condition_columns(part)
    return found


def describe(config: Any) -> str:
    kw = config.kwargs
    where = kw.get("column") or f"{kw.get('column_A')}/{kw.get('column_B')}"
    return f"{config.type}({where}) [{(config.meta or {}).get('reason_code')}]"
