"""Stable error codes with messages in Chinese and English.

A district reads these: every code is stable (documented in README, never renamed), every
message exists in both languages. File-level codes start with ``F``, row-level with ``R``,
warnings with ``W``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# code -> (zh template, en template); templates use str.format(**params)
CATALOG: dict[str, tuple[str, str]] = {
    # --- file level: the whole file is refused -----------------------------------------
    "F001_UNREADABLE": ("文件无法读取：{detail}", "The file cannot be read: {detail}"),
    "F002_UNSUPPORTED_TYPE": (
        "不支持的文件类型“{suffix}”，请提交 .xlsx、.xls、.ods、.csv、.txt（Unicode 文本）或 .json 文件",
        "Unsupported file type '{suffix}'; send .xlsx, .xls, .ods, .csv, .txt (Unicode text) or .json",
    ),
    "F003_EMPTY_FILE": ("文件为空", "The file is empty"),
    "F004_NO_TABLE": (
        "未找到可识别的报表（表头与任何一类记录都不匹配）{detail}",
        "No recognisable table: no header matches a record kind{detail}",
    ),
    "F005_UNKNOWN_UNIT": (
        "填报单位代码“{unit_code}”不在区划代码库中",
        "Reporting unit code '{unit_code}' is not in the region register",
    ),
    "F006_NO_UNIT": (
        "无法确定填报单位（文件内容、文件名和上传目录中均未给出区划代码）",
        "The reporting unit is not stated (not in the file, its name or its landing folder)",
    ),
    "F007_NO_PERIOD": (
        "无法确定报告期（应为 2024-06、2024年6月、2024Q2、2024年第二季度 或 2024年4-6月）",
        "The report period is not stated (expected 2024-06, 2024年6月, 2024Q2, 2024年第二季度 or 2024年4-6月)",
    ),
    "F008_CONTRADICTORY_METADATA": (
        "{what}来源之间不一致：{detail}",
        "Sources disagree on the {what_en}: {detail}",
    ),
    "F009_TOO_LARGE": (
        "文件大小 {size} 字节超过上限 {limit} 字节",
        "The file is {size} bytes, above the limit of {limit} bytes",
    ),
    "F010_ZIP_BOMB": (
        "工作簿解压后大小 {size} 字节超过上限 {limit} 字节，已拒收",
        "The workbook decompresses to {size} bytes, above the limit of {limit} bytes; refused",
    ),
    "F011_MISSING_COLUMNS": (
        "“{kind_zh}”缺少必填列：{missing}；已找到的列：{found}",
        "'{kind}' lacks required columns: {missing}; columns found: {found}",
    ),
    "F012_BAD_JSON": ("JSON 文档格式不符合规范：{detail}", "The JSON document does not follow the contract: {detail}"),
    "F013_BAD_ENCODING": (
        "无法识别文件编码（支持 UTF-8、UTF-8 BOM、GB18030/GBK、带 BOM 的 UTF-16）",
        "Unknown text encoding (UTF-8, UTF-8 with BOM, GB18030/GBK and UTF-16 with a BOM are accepted)",
    ),
    "F014_INTERNAL": (
        "处理文件时发生内部错误，已记录，请联系维护人员：{detail}",
        "Internal error while processing the file; recorded, please contact the maintainers: {detail}",
    ),
    "F015_NO_DATA": (
        "文件中没有数据行（只有表头、空行或合计行）",
        "The file has no data rows (only headers, blank rows or a total row)",
    ),
    "F016_NOT_XLSX": (
        "文件扩展名为 {suffix}，但内容是{actual_zh}；请用 Excel 或 WPS 打开后另存为 .xlsx 再报送",
        "The file is named {suffix} but is {actual_en}; open it in Excel or WPS, save it as .xlsx and send it again",
    ),
    "F017_NOT_A_PERIOD": (
        "报告期“{span}”不是单月或单季度（累计、半年或全年数不是本制度的报告期），请按月或按季度分别报送",
        "The period '{span}' is neither one month nor one quarter (cumulative, half-year and full-year "
        "figures are not report periods); send each month or quarter separately",
    ),
    # --- row level: the row goes to quarantine ----------------------------------------
    "R001_REQUIRED_MISSING": ("必填项“{column_zh}”为空", "Required value '{column}' is empty"),
    "R002_NOT_A_NUMBER": ("“{value}”不是有效数字", "'{value}' is not a number"),
    "R003_NOT_A_DATE": ("“{value}”不是有效日期", "'{value}' is not a date"),
    "R004_NEGATIVE": ("“{column_zh}”不能为负数：{value}", "'{column}' cannot be negative: {value}"),
    "R005_NOT_INTEGER": ("“{column_zh}”应为整数：{value}", "'{column}' must be a whole number: {value}"),
    "R006_UNKNOWN_CODE": (
        "“{column_zh}”的值“{value}”不在代码表中",
        "'{value}' is not a valid value for '{column}'",
    ),
    "R007_BAD_DIVISION_CODE": (
        "区划代码“{value}”格式无效（应为 6、9 或 12 位数字；被 Excel 转为科学计数法的代码无法恢复）",
        "Division code '{value}' is malformed (6, 9 or 12 digits expected; a code Excel turned into "
        "scientific notation cannot be recovered)",
    ),
    "R008_UNKNOWN_REGION": (
        "区划代码“{value}”不在区划代码库中",
        "Division code '{value}' is not in the region register",
    ),
    "R009_UNKNOWN_PAIRING": (
        "结对编号“{value}”未登记（请先在“结对关系”中报送）",
        "Pairing '{value}' is not registered for this unit (report it under pairings first)",
    ),
    "R010_DATE_OUTSIDE_PERIOD": (
        "日期 {value} 不在报告期 {period}（{start} 至 {end}）内",
        "Date {value} is outside the report period {period} ({start} to {end})",
    ),
    "R011_PARTY_ABOVE_PARTICIPANTS": (
        "党员人数 {value} 大于参与人数 {other}",
        "Party members {value} exceed participants {other}",
    ),
    "R012_DUPLICATE_ROW": (
        "与第 {first_row} 行重复",
        "Duplicate of row {first_row}",
    ),
    "R013_DATE_IN_FUTURE": ("日期 {value} 晚于今天", "Date {value} is in the future"),
    "R014_END_BEFORE_START": (
        "终止日期 {value} 早于结对日期 {other}",
        "End date {value} is before the pairing date {other}",
    ),
    "R015_BAD_BOOL": ("“{value}”应为“是”或“否”", "'{value}' must be 是 (yes) or 否 (no)"),
    "R016_TEXT_TOO_LONG": ("文本超过 {limit} 个字符", "Text longer than {limit} characters"),
    "R017_UNIT_NAME_UNRESOLVED": (
        "“{column_zh}”“{value}”在{area}的区划代码库中{found_zh}，请填写区划代码",
        "'{column}' '{value}' {found_en} in the register within {area}; give its division code",
    ),
    "R018_NO_MEASURE": (
        "收益成效至少应填写一项指标（村集体增收、村民增收、农产品销售量、农产品销售额、带动就业人数、受益户数）",
        "An income row needs at least one measure (collective or villagers' income, produce sold or its "
        "sales, jobs, households)",
    ),
    # --- warnings: the file loads, the warning is recorded ----------------------------
    "W001_NEGATIVE_INCOME": (
        "村集体增收为负数（亏损）：{value}，请核实",
        "Collective income increase is negative (a loss): {value}; please check",
    ),
    "W002_TOTAL_MISMATCH": (
        "合计行“{column_zh}”为 {total}，明细合计为 {detail_sum}",
        "Total row '{column}' says {total}, the detail rows add up to {detail_sum}",
    ),
    "W003_NORMALISED": ("已规范化：{detail}", "Normalised: {detail}"),
    "W004_NAME_CODE_MISMATCH": (
        "“{column_zh}”{given_code} 在区划代码库中为“{register_name}”，与所填名称“{value}”不一致，请核实",
        "'{column}' {given_code} is '{register_name}' in the register, not '{value}' as written; please check",
    ),
}


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(code: str, **params: Any) -> tuple[str, str]:
    zh, en = CATALOG[code]
    safe = _Defaults({k: "" if v is None else v for k, v in params.items()})
    return zh.format_map(safe), en.format_map(safe)


@dataclass
class Problem:
    """One thing wrong with a file or a row, ready for audit and quarantine."""

    code: str
    message_zh: str
    message_en: str
    sheet: str | None = None
    row: int | None = None  # 1-based row number in the source sheet/file
    column: str | None = None  # field name
    value: str | None = None  # offending value as received

    @classmethod
    def make(
        cls,
        code: str,
        *,
        sheet: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
        **params: Any,
    ) -> Problem:
        params.setdefault("value", value)
        params.setdefault("column", column)
        zh, en = render(code, **params)
        return cls(
            code=code,
            message_zh=zh,
            message_en=en,
            sheet=sheet,
            row=row,
            column=column,
            value=None if value is None else str(value),
        )

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class FileRejected(Exception):
    """Raised by readers and resolvers when a whole file must be refused."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.code}: {problem.message_en}")
        self.problem = problem
