"""The nightly suites run by Great Expectations on the warehouse (SQL engine), with Data Docs.

One suite per check over its rows of ``int_quality_checks``, and direct expectations on the
facts and the audit (recorded in ``audit.dq_results`` as checks of their own), in one
Checkpoint; then the night's HTML Data Docs pages and the index are built once (kept across
nights), made to work offline by ``data_docs.make_offline``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.digest import NIGHTLY_SUITES, load_suite_files

__all__ = ["gx_connection", "validate_with_gx"]


def gx_connection(libpq: str) -> tuple[str, dict[str, Any]]:
    """GX's connection string and engine arguments for a libpq URL.

    GX validates a Postgres connection string as a URL with a host; the embedded warehouse is
    reached over a unix socket (``postgresql://postgres@/pairstats?host=/path``), so the socket
    directory and port go to the driver as ``connect_args`` and the URL names ``localhost``,
    which libpq then ignores."""
    from urllib.parse import quote

    from ingestion.warehouse import libpq_params

    params = libpq_params(libpq)
    if not params["host"].startswith("/"):
        return "postgresql+psycopg2" + libpq[libpq.index(":") :], {}
    auth = quote(params["user"]) + (f":{quote(params['password'])}" if params["password"] else "")
    url = f"postgresql+psycopg2://{auth}@localhost/{quote(params['dbname'])}"
    return url, {"connect_args": {"host": params["host"], "port": int(params["port"])}}


def validate_with_gx(settings: Settings, run_id: str, url: str, folder: Path = NIGHTLY_SUITES) -> str:
    """Run the nightly suites with GX's SQL engine on the warehouse, in one Checkpoint that
    updates the Data Docs; record the direct warehouse expectations as checks. Returns the
    Data Docs index (a path or the configured URL)."""
    from ingestion.suites import quiet_gx
    from ingestion.validate import raise_if_gx_failed

    quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    settings.data_docs.mkdir(parents=True, exist_ok=True)
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    stores = dict(defaults.stores)
    # results on disk: the Data Docs keep every night, not only this process's run
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(settings.home / "gx" / "validations"),
        },
    }
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(settings.data_docs)},
    }
    config = DataContextConfig(
        stores=stores,
        expectations_store_name=defaults.expectations_store_name,
        validation_results_store_name=defaults.validation_results_store_name,
        checkpoint_store_name=defaults.checkpoint_store_name,
        data_docs_sites={"pairstats": site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    connection_string, engine_kwargs = gx_connection(url)
    source = context.data_sources.add_postgres("warehouse", connection_string=connection_string, kwargs=engine_kwargs)
    definitions = []
    suites = load_suite_files(folder)
    for name, data in suites.items():
        asset_spec = data["meta"]["asset"]
        short = name.removeprefix("pairstats_nightly_")
        if asset_spec.get("query"):
            asset = source.add_query_asset(short, query=asset_spec["query"])
        else:
            schema, _, table = asset_spec["table"].rpartition(".")
            asset = source.add_table_asset(short, table_name=table, schema_name=schema or None)
        batch = asset.add_batch_definition_whole_table("whole")
        suite = context.suites.add(gx.ExpectationSuite(**{k: v for k, v in data.items() if k != "id"}))
        if len(suite.expectations) != len(data["expectations"]):
            raise RuntimeError(f"nightly suite {name}: an expectation did not load; check its JSON")
        definitions.append(
            context.validation_definitions.add(gx.ValidationDefinition(name=short, data=batch, suite=suite))
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="nightly_data_quality",
            validation_definitions=definitions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
        )
    )
    result = checkpoint.run(run_id=_gx_run_id(run_id))
    # the night's pages and the index, built once (GX's UpdateDataDocsAction rebuilds the
    # index after each suite: 12 times a night, each reading every night kept)
    identifiers: list[Any] = []
    for identifier, validation in result.run_results.items():
        identifiers += [identifier, ExpectationSuiteIdentifier(name=validation.suite_name)]
    context.build_data_docs(site_names=["pairstats"], resource_identifiers=identifiers, build_index=True)
    from ingestion.data_docs import make_offline

    make_offline(settings.data_docs)  # GX's pages load their CSS and scripts from CDNs: local copies
    rows = []
    for validation in result.run_results.values():
        suite_meta = suites[validation.suite_name]["meta"]
        for res in validation.results:
            raise_if_gx_failed(res, res.expectation_config)  # an expectation that raised fails the run
            if suite_meta.get("results") == "gx":  # else a check of int_quality_checks: recorded row by row
                rows.append(_gx_check_row(validation.suite_name, suite_meta, res))
    if rows:
        from ingestion.warehouse import connect

        with connect(url) as conn:
            for row in rows:
                conn.execute(
                    """insert into audit.dq_results (run_id, check_name, severity, outcome, observed_value,
                           failing_rows, detail_zh, detail_en, examples)
                       values (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (run_id, *row),
                )
            conn.commit()
    return settings.data_docs_index


def _gx_run_id(run_id: str) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.UTC))


def _gx_check_row(suite_name: str, suite_meta: dict[str, Any], res: Any) -> tuple:
    from psycopg.types.json import Jsonb

    config = res.expectation_config
    meta = config.meta or {}
    columns = "/".join(str(config.kwargs[k]) for k in ("column", "column_A", "column_B") if k in config.kwargs)
    check = f"gx:{suite_name.removeprefix('pairstats_nightly_')}.{config.type.removeprefix('expect_')}"
    if columns:
        check += f"({columns})"
    result = res.result or {}
    unexpected = int(result.get("unexpected_count") or 0)
    examples = [{"value": v} for v in (result.get("partial_unexpected_list") or [])[:5]]
    label_zh = meta.get("label_zh") or config.description
    label_en = meta.get("label_en") or config.description
    detail_zh = f"{label_zh}：{'通过' if res.success else f'{unexpected} 行不符'}"
    detail_en = f"{label_en}: {'passed' if res.success else f'{unexpected} rows do not'}"
    severity = meta.get("severity") or suite_meta.get("severity") or "error"
    return (check, severity, "pass" if res.success else "fail", unexpected, unexpected, detail_zh, detail_en,
            Jsonb(examples))  # fmt: skip
