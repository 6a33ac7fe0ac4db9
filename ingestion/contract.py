"""The submission contract v1.1 as data: record kinds, fields, headers, code lists.

Everything that reads, writes, validates or documents a submission (readers, the demo
generator, the GX suites, the template, the dbt sources) takes its field list from here,
so the contract has exactly one definition in code. See README "Submission contract".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    CODE = "code"  # administrative division code (6, 9 or 12 digits)
    DATE = "date"
    COUNT = "count"  # integer >= 0
    MONEY = "money"  # yuan, 2 decimals
    NUMBER = "number"  # decimal quantity in a base unit (tonnes, mu)
    ENUM = "enum"  # value from a code list
    BOOL = "bool"  # 是 / 否


@dataclass(frozen=True)
class Field:
    name: str  # English field name, also the raw column name
    header_zh: str  # canonical Chinese header (without unit)
    type: FieldType
    required: bool = True
    unit: str | None = None  # base unit stored in the warehouse: 元, 吨, 亩
    min_value: float | None = None  # inclusive lower bound, None = unbounded
    codes: dict[str, str] | None = None  # ENUM: code -> Chinese label
    synonyms: tuple[str, ...] = ()  # other headers districts use
    description_en: str = ""
    # a code that may be left out when this field (its unit's name) is given: the name is then
    # resolved against the region register (pairings: 城市单位名称 for 城市单位代码)
    resolved_from: str | None = None

    @property
    def header_with_unit(self) -> str:
        return f"{self.header_zh}（{self.unit}）" if self.unit else self.header_zh


@dataclass(frozen=True)
class RecordKind:
    name: str  # activities, projects, ...
    label_zh: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]  # fields that identify a row within one submission
    load_order: int = 0
    sheet_aliases: tuple[str, ...] = field(default=())
    # fields of which a row must give at least one (each may be empty on its own; R018)
    at_least_one: tuple[str, ...] = ()
    # whether a file holding only this kind is a registration, not a periodic report (no period)
    needs_period: bool = True

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def get(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


ACTIVITY_TYPES: dict[str, str] = {
    "joint_meeting": "共建议事会",
    "themed_party_day": "主题党日",
    "training": "培训",
    "cultural": "文化活动",
    "sports": "体育活动",
    "volunteer_service": "志愿服务",
    "donation": "捐赠",
    "environment_cleanup": "环境整治",
    "study_visit": "交流学习",
    "market_matching": "产销对接",
    "cadre_exchange": "干部互派",
    "other": "其他",
}

PROJECT_CATEGORIES: dict[str, str] = {
    "industry": "产业发展",
    "governance": "基层治理",
    "culture": "文化共融",
    "livelihood": "民生服务",
    "party_building": "组织共建",
    "talent": "人才培养",
}

PROJECT_STATUSES: dict[str, str] = {
    "planned": "计划",
    "in_progress": "实施中",
    "completed": "已完成",
    "cancelled": "已终止",
}

PAIRING_FORMS: dict[str, str] = {
    "one_to_one": "一对一",
    "one_to_many": "一对多",
    "many_to_one": "多对一",
}

F = FieldType

PAIRINGS = RecordKind(
    name="pairings",
    label_zh="结对关系",
    load_order=0,
    key=("pairing_code",),
    sheet_aliases=("结对关系", "pairings"),
    needs_period=False,
    fields=(
        Field("pairing_code", "结对编号", F.TEXT, description_en="pairing code, unique within the reporting unit"),
        Field(
            "urban_unit_code",
            "城市单位代码",
            F.CODE,
            description_en="division code of the urban unit",
            resolved_from="urban_unit_name",
        ),
        Field("urban_unit_name", "城市单位名称", F.TEXT, required=False),
        Field(
            "rural_unit_code",
            "农村单位代码",
            F.CODE,
            description_en="division code of the rural unit",
            resolved_from="rural_unit_name",
        ),
        Field("rural_unit_name", "农村单位名称", F.TEXT, required=False),
        Field("pairing_form", "结对形式", F.ENUM, codes=PAIRING_FORMS),
        Field("paired_on", "结对日期", F.DATE),
        Field("ended_on", "终止日期", F.DATE, required=False),
        Field("agreement_signed", "是否签订协议", F.BOOL),
    ),
)

ACTIVITIES = RecordKind(
    name="activities",
    label_zh="共建活动",
    load_order=1,
    # an activity has no code of its own: a duplicate is a row identical in every field
    key=(
        "activity_date",
        "pairing_code",
        "activity_type",
        "title",
        "participants",
        "party_member_participants",
        "problems_resolved",
        "suggestions_collected",
    ),
    sheet_aliases=("共建活动", "activities"),
    fields=(
        Field("activity_date", "活动日期", F.DATE),
        Field("pairing_code", "结对编号", F.TEXT),
        Field("activity_type", "活动类型", F.ENUM, codes=ACTIVITY_TYPES),
        Field("title", "活动名称", F.TEXT),
        Field("participants", "参与人数", F.COUNT, min_value=0, synonyms=("参加人数", "参与人次", "参加人次")),
        Field(
            "party_member_participants",
            "其中党员人数",
            F.COUNT,
            min_value=0,
            synonyms=("党员人数", "其中党员", "党员参与人数"),
        ),
        Field(
            "problems_resolved", "解决问题数", F.COUNT, required=False, min_value=0, synonyms=("解决急难愁盼问题数",)
        ),
        Field(
            "suggestions_collected", "收集建议数", F.COUNT, required=False, min_value=0, synonyms=("收集意见建议数",)
        ),
    ),
)

PROJECTS = RecordKind(
    name="projects",
    label_zh="共建项目",
    load_order=1,
    key=("project_code",),
    sheet_aliases=("共建项目", "projects"),
    fields=(
        Field("project_code", "项目编号", F.TEXT),
        Field("project_name", "项目名称", F.TEXT),
        Field("pairing_code", "结对编号", F.TEXT),
        Field("category", "项目类别", F.ENUM, codes=PROJECT_CATEGORIES),
        Field("start_date", "开始日期", F.DATE),
        Field("status", "项目状态", F.ENUM, codes=PROJECT_STATUSES),
        Field("investment_yuan", "投入资金", F.MONEY, unit="元", min_value=0, synonyms=("投入金额", "投资金额")),
        Field("land_mu", "涉及土地", F.NUMBER, required=False, unit="亩", min_value=0, synonyms=("土地面积",)),
        Field("households_benefited", "受益户数", F.COUNT, required=False, min_value=0),
    ),
)

INCOME_EFFECTS = RecordKind(
    name="income_effects",
    label_zh="收益成效",
    load_order=1,
    key=("pairing_code",),
    sheet_aliases=("收益成效", "income_effects"),
    # v1.1: each measure may be empty (not reported: NULL, never 0); a row needs at least one
    at_least_one=(
        "collective_income_increase_yuan",
        "villager_income_increase_yuan",
        "produce_sold_tonnes",
        "produce_sales_yuan",
        "jobs_created",
        "households_benefited",
    ),
    fields=(
        Field("pairing_code", "结对编号", F.TEXT),
        Field(
            "collective_income_increase_yuan",
            "村集体增收",
            F.MONEY,
            required=False,
            unit="元",
            synonyms=("集体增收", "村集体经济增收"),
        ),
        Field(
            "villager_income_increase_yuan",
            "村民增收",
            F.MONEY,
            required=False,
            unit="元",
            synonyms=("群众增收", "农户增收"),
        ),
        Field(
            "produce_sold_tonnes",
            "农产品销售量",
            F.NUMBER,
            required=False,
            unit="吨",
            min_value=0,
            synonyms=("销售量",),
        ),
        Field(
            "produce_sales_yuan", "农产品销售额", F.MONEY, required=False, unit="元", min_value=0, synonyms=("销售额",)
        ),
        Field("jobs_created", "带动就业人数", F.COUNT, required=False, min_value=0, synonyms=("带动就业",)),
        Field("households_benefited", "受益户数", F.COUNT, required=False, min_value=0),
    ),
)


RECORD_KINDS: dict[str, RecordKind] = {k.name: k for k in (PAIRINGS, ACTIVITIES, PROJECTS, INCOME_EFFECTS)}


def kinds_in_load_order() -> list[RecordKind]:
    return sorted(RECORD_KINDS.values(), key=lambda k: k.load_order)
