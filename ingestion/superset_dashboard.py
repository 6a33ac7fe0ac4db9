"""The pairstats dashboard in Superset, made through its REST API (``/api/v1``).

:func:`build_dashboard` registers the warehouse as a database with the URL of a BI login
(``pairstats bi add``: postgresql over TCP, member of ``bi_reader``, reads ``marts`` only),
creates a dataset on every mart the login can read, sets each column's verbose name to the
Chinese label of its PostgreSQL comment (``pg_description``: the text before `` / `` up to
its first bracket or colon, e.g. ``活动次数（本组合计…） / Activities held …`` → ``活动次数``)
and its description to the whole comment, adds a SUM metric per measure of
``rpt_region_rollup``, then the charts of :data:`CHARTS` (activities and villagers' income
increase per county: the reporting units' county rows, all years) and a dashboard holding
them. Every object is found by its name and updated, so running it again changes nothing
but what changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

DATABASE_NAME = "pairstats"
SCHEMA = "marts"
ROLLUP = "rpt_region_rollup"
DASHBOARD_SLUG = "pairstats-counties"
DASHBOARD_TITLE = "各区县结对共建 · Pairing by county"
# One row per county and year: what each county-level unit reported (filter one attribution).
COUNTY_FILTERS = {"attribution": "reporting_unit", "tree": "civil", "level_name": "county", "period_grain": "year"}
GROUP_BY = ("region_code", "region_name")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    viz_type: str
    measures: tuple[str, ...]  # columns of rpt_region_rollup, summed


CHARTS = (
    Chart("activities", "各区县活动次数 · Activities per county", "echarts_timeseries_bar", ("activity_count",)),
    Chart(
        "villager_income",
        "各区县村民增收（元） · Villagers' income increase per county (yuan)",
        "echarts_timeseries_bar",
        ("villager_income_increase_yuan",),
    ),
    Chart(
        "table",
        "各区县活动次数与村民增收 · Activities and villagers' income per county",
        "table",
        ("activity_count", "villager_income_increase_yuan"),
    ),
)


@dataclass
class Dashboard:
    id: int
    url: str
    database_id: int
    datasets: dict[str, int] = field(default_factory=dict)  # table -> dataset id
    charts: dict[str, int] = field(default_factory=dict)  # Chart.key -> chart id
    labels: dict[str, str] = field(default_factory=dict)  # rpt_region_rollup column -> zh label


def metric_name(column: str) -> str:
    return f"sum__{column}"


# --------------------------------------------------------------------------- the REST API


def rison(value: Any) -> str:
    """Rison, the encoding of the ``q`` parameter of Superset's list endpoints."""
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if value is True or value is False or value is None:
        return {True: "!t", False: "!f", None: "!n"}[value]
    if isinstance(value, int | float):
        return str(value)
    if re.fullmatch(r"[A-Za-z_./~][A-Za-z0-9_./~-]*", value):
        return value
    return "'" + value.replace("!", "!!").replace("'", "!'") + "'"


class SupersetAPIError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"Superset {method} {path}: HTTP {status}: {body[:2000]}")
        self.status, self.body = status, body


class Superset:
    """A logged-in session: JWT from ``/api/v1/security/login``, CSRF token for writes."""

    def __init__(self, base: str, username: str, password: str, *, timeout: float = 180) -> None:
        self.base = base.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=timeout)
        login = {"username": username, "password": password, "provider": "db", "refresh": True}
        token = self.call("POST", "/api/v1/security/login", login)["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        csrf = self.call("GET", "/api/v1/security/csrf_token/")["result"]  # bound to the session cookie
        self.http.headers.update({"X-CSRFToken": csrf, "Referer": self.base})

    def call(self, method: str, path: str, payload: Any = None, *, params: dict | None = None) -> dict:
        resp = self.http.request(method, path, json=payload, params=params)
        if resp.status_code >= 400:
            raise SupersetAPIError(method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def find(self, resource: str, **equal: Any) -> list[dict]:
        filters = [{"col": col, "opr": "eq", "value": value} for col, value in equal.items()]
        query = rison({"filters": filters, "page_size": 100})
        return self.call("GET", f"/api/v1/{resource}/", params={"q": query})["result"]

    def upsert(self, resource: str, payload: dict, **equal: Any) -> int:
        """PUT the one object whose ``equal`` fields match, else POST a new one; its id."""
        found = self.find(resource, **equal)
        if found:
            self.call("PUT", f"/api/v1/{resource}/{found[0]['id']}", payload)
            return found[0]["id"]
        return self.call("POST", f"/api/v1/{resource}/", payload)["id"]


# --------------------------------------------------------------------------- labels


_CJK = re.compile(r"[\u3400-\u9fff]")


_UNIT = re.compile(r"（(万元|元|亩|吨|公顷)[；，）]")


def zh_label(comment: str | None) -> str | None:
    """The Chinese label of a bilingual column comment (its unit kept: 村民增收（元） and
    村民增收（万元） are two columns), or None when it has none."""
    zh = (comment or "").split(" / ", 1)[0]
    head = re.split(r"[（(：:]", zh, maxsplit=1)[0]
    label, unit = head.strip(), _UNIT.match(zh, len(head))
    return (label + (f"（{unit.group(1)}）" if unit else "")) if _CJK.search(label) else None


def mart_comments(bi_url: str) -> dict[str, dict[str, str | None]]:
    """{table: {column: comment}} of every table of marts the login can read (as the login)."""
    with psycopg.connect(bi_url, connect_timeout=10) as conn:
        rows = conn.execute(
            """select c.relname, a.attname, col_description(c.oid, a.attnum)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
               where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')
                 and has_table_privilege(c.oid, 'select')
               order by c.relname, a.attnum""",
            (SCHEMA,),
        ).fetchall()
    out: dict[str, dict[str, str | None]] = {}
    for table, column, comment in rows:
        out.setdefault(table, {})[column] = comment
    return out


# --------------------------------------------------------------------------- objects


def register_database(api: Superset, bi_url: str, name: str = DATABASE_NAME) -> int:
    api.call("POST", "/api/v1/database/test_connection/", {"database_name": name, "sqlalchemy_uri": bi_url})
    payload = {"database_name": name, "sqlalchemy_uri": bi_url, "expose_in_sqllab": True, "allow_dml": False}
    return api.upsert("database", payload, database_name=name)


def _dataset(api: Superset, database_id: int, table: str, comments: dict[str, str | None]) -> int:
    found = [d for d in api.find("dataset", table_name=table, schema=SCHEMA) if d["database"]["id"] == database_id]
    if found:
        dataset_id = found[0]["id"]
        api.call("PUT", f"/api/v1/dataset/{dataset_id}/refresh")  # the table's columns, as they are now
    else:
        payload = {"database": database_id, "schema": SCHEMA, "table_name": table}
        dataset_id = api.call("POST", "/api/v1/dataset/", payload)["id"]
    current = api.call("GET", f"/api/v1/dataset/{dataset_id}")["result"]
    columns = [
        {"id": c["id"], "column_name": c["column_name"], "verbose_name": zh_label(comments.get(c["column_name"]))}
        | ({"description": comments[c["column_name"]]} if comments.get(c["column_name"]) else {})
        for c in current["columns"]
    ]
    metrics = {m["metric_name"]: m for m in current["metrics"]}
    if table == ROLLUP:  # a SUM per measure, labelled like its column
        for c in current["columns"]:
            name = c["column_name"]
            if c.get("type_generic") == 0 and not name.endswith("_rows") and name != "region_level":
                metrics[metric_name(name)] = metrics.get(metric_name(name), {}) | {
                    "metric_name": metric_name(name),
                    "expression": f'SUM("{name}")',
                    "verbose_name": zh_label(comments.get(name)) or name,
                    "description": comments.get(name),
                    "d3format": ",.2f" if "NUMERIC" in (c.get("type") or "").upper() else ",d",
                }
    keep = ("id", "metric_name", "expression", "verbose_name", "description", "metric_type", "d3format")
    payload = {
        "columns": columns,
        "metrics": [{k: m[k] for k in keep if m.get(k) is not None} for m in metrics.values()],
        "description": f"pairstats {SCHEMA}.{table}",
    }
    api.call("PUT", f"/api/v1/dataset/{dataset_id}", payload)
    return dataset_id


def _filters() -> list[dict]:
    return [
        {"expressionType": "SIMPLE", "clause": "WHERE", "subject": col, "operator": "==", "comparator": value}
        for col, value in COUNTY_FILTERS.items()
    ]


def form_data(chart: Chart, dataset_id: int, labels: dict[str, str]) -> dict:
    """What the chart's explore view would save: the frontend renders from it."""
    metrics = [metric_name(m) for m in chart.measures]
    form = {"datasource": f"{dataset_id}__table", "viz_type": chart.viz_type, "metrics": metrics}
    form |= {"adhoc_filters": _filters(), "row_limit": 1000, "time_range": "No filter"}
    if chart.viz_type == "table":
        return form | {"query_mode": "aggregate", "groupby": list(GROUP_BY), "order_desc": True}
    return form | {
        **{"x_axis": "region_name", "groupby": [], "orientation": "vertical", "show_value": True},
        **{"show_legend": False, "rich_tooltip": True, "y_axis_format": "SMART_NUMBER", "truncate_metric": True},
        **{"x_axis_title": labels.get("region_name", ""), "x_axis_title_margin": 30},
        **{"y_axis_title": labels.get(chart.measures[0], ""), "y_axis_title_margin": 50},
    }


def query_context(chart: Chart, dataset_id: int, labels: dict[str, str]) -> dict:
    """The chart's query for ``/api/v1/chart/data``: its measures summed per county."""
    query = {
        "columns": list(GROUP_BY),
        "metrics": [metric_name(m) for m in chart.measures],
        "filters": [{"col": col, "op": "==", "val": value} for col, value in COUNTY_FILTERS.items()],
        "orderby": [["region_code", True]],
        "row_limit": 1000,
    }
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": form_data(chart, dataset_id, labels),
        "result_format": "json",
        "result_type": "full",
    }


def _position(charts: list[tuple[int, str, str]]) -> dict:
    """Bars side by side in the first row, the table under them (a 12-column grid)."""
    layout: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": DASHBOARD_TITLE}},
    }
    rows: dict[str, list[str]] = {}
    for chart_id, title, viz_type in charts:
        row = "ROW-table" if viz_type == "table" else "ROW-bars"
        rows.setdefault(row, []).append(f"CHART-{chart_id}")
        width, height = (12, 34) if viz_type == "table" else (6, 56)
        layout[f"CHART-{chart_id}"] = {
            "type": "CHART",
            "id": f"CHART-{chart_id}",
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID", row],
            "meta": {"chartId": chart_id, "width": width, "height": height, "sliceName": title},
        }
    for row, children in rows.items():
        layout["GRID_ID"]["children"].append(row)
        meta = {"background": "BACKGROUND_TRANSPARENT"}
        layout[row] = {"type": "ROW", "id": row, "children": children, "parents": ["ROOT_ID", "GRID_ID"], "meta": meta}
    return layout


def build_dashboard(api: Superset, bi_url: str) -> Dashboard:
    """The database, the datasets, the charts and the dashboard (see the module doc)."""
    database_id = register_database(api, bi_url)
    comments = mart_comments(bi_url)
    datasets = {table: _dataset(api, database_id, table, cols) for table, cols in comments.items()}
    rollup = datasets[ROLLUP]
    labels = {c: label for c, comment in comments[ROLLUP].items() if (label := zh_label(comment))}
    metadata = {"color_scheme": "supersetColors", "refresh_frequency": 0, "cross_filters_enabled": False}
    dashboard = {"dashboard_title": DASHBOARD_TITLE, "slug": DASHBOARD_SLUG, "published": True}
    dashboard_id = api.upsert("dashboard", dashboard | {"json_metadata": json.dumps(metadata)}, slug=DASHBOARD_SLUG)
    charts = {}
    for chart in CHARTS:
        payload = {
            "slice_name": chart.title,
            "viz_type": chart.viz_type,
            "datasource_id": rollup,
            "datasource_type": "table",
            "params": json.dumps(form_data(chart, rollup, labels), ensure_ascii=False),
            "query_context": json.dumps(query_context(chart, rollup, labels), ensure_ascii=False),
            "dashboards": [dashboard_id],
        }
        charts[chart.key] = api.upsert("chart", payload, slice_name=chart.title)
    position = _position([(charts[c.key], c.title, c.viz_type) for c in CHARTS])
    api.call("PUT", f"/api/v1/dashboard/{dashboard_id}", {"position_json": json.dumps(position, ensure_ascii=False)})
    url = f"/superset/dashboard/{DASHBOARD_SLUG}/"
    return Dashboard(dashboard_id, url, database_id, datasets, charts, labels)
