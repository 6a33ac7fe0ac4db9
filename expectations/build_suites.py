"""Generate the GX suites ``expectations/<kind>.json`` from ``ingestion/contract.py``.

    python expectations/build_suites.py           # (re)write the four suites
    python expectations/build_suites.py --check   # exit 1 if a committed suite is stale

The suites are committed so that a reviewer reads the rules as GX runs them; this script is
the only way they are written, so a field added, renamed or made optional in the contract
cannot silently diverge from them (a test runs ``--check``). At run time
``ingestion/validate.py`` loads the JSON files, it does not call this script.

Every expectation carries ``meta.reason_code`` (a code of ``ingestion/problems.py``), which
is how a failure becomes a Problem. Pair expectations also say in ``meta.column`` which
field the Problem names and in ``meta.other_column`` which field fills ``{other}``.
Values known only at validation time are suite parameters (``{"$PARAMETER": name}``):

- ``today``: the ingest date, as a datetime (R013)
- ``known_pairing_refs``: ``<file>\x1f<pairing code>`` of every pairing registered for the
  unit of each file validated (R009)

Values that differ from file to file are row parameters, columns the validator adds to each
row (``ROW_PARAMETERS``), so that the rows of many files are validated in one GX call:
``_pairing_ref`` (the row's file and pairing code), ``_period_start`` / ``_period_end``
(its file's report period, R010 as two pair expectations).

A kind's ``at_least_one`` fields (income measures, each optional) become one not-null
expectation on the first of them with a row condition "every other one is null" (R018).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make ``ingestion`` importable
    sys.path.insert(0, str(ROOT))

from ingestion.contract import RECORD_KINDS, FieldType, RecordKind  # noqa: E402

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

SUITE_PREFIX = "pairstats_"
NUMERIC = (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER)
# Record kinds whose pairing_code must name a pairing already registered for the unit.
PAIRING_REFERENCES = ("activities", "projects", "income_effects")
# Row parameters: columns the validator adds to every row before GX sees it (not contract fields)
PAIRING_REF = "_pairing_ref"
PERIOD_START = "_period_start"
PERIOD_END = "_period_end"
ROW_PARAMETERS = (PAIRING_REF, PERIOD_START, PERIOD_END)


def suite_name(kind: str) -> str:
    return f"{SUITE_PREFIX}{kind}"


def suite_path(kind: str, folder: Path = HERE) -> Path:
    return folder / f"{kind}.json"


def _field(kind: RecordKind, name: str):
    """The contract field, or a clear error if a rule names a field the contract lost."""
    try:
        return kind.get(name)
    except KeyError:
        raise SystemExit(f"build_suites: rule names {kind.name}.{name}, which is not in contract.py") from None


def _expectations(kind: RecordKind) -> list[Any]:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    out: list[Any] = []
    # --- rules that follow from the field definitions ---------------------------------
    for f in kind.fields:
        if f.required:
            out.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=f.name,
                    description=f"{kind.name}.{f.name} is required",
                    meta={"reason_code": "R001_REQUIRED_MISSING"},
                )
            )
    for f in kind.fields:
        if f.type in NUMERIC and f.min_value is not None:
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f.name,
                    min_value=f.min_value,
                    description=f"{kind.name}.{f.name} is at least {f.min_value:g}",
                    meta={"reason_code": "R004_NEGATIVE"},
                )
            )
    for f in kind.fields:
        if f.type == FieldType.ENUM:
            assert f.codes, f"{kind.name}.{f.name}: an ENUM field needs codes"
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=f.name,
                    value_set=sorted(f.codes),
                    description=f"{kind.name}.{f.name} is a code of its code list",
                    meta={"reason_code": "R006_UNKNOWN_CODE"},
                )
            )
    if kind.at_least_one:
        first, *others = (_field(kind, name).name for name in kind.at_least_one)
        condition = Column(others[0]).is_null()
        for name in others[1:]:
            condition = condition & Column(name).is_null()
        out.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=first,
                # where every other measure is empty, the first must not be: at least one is given
                row_condition=condition,
                description=f"{kind.name}: at least one of {', '.join(kind.at_least_one)} is given",
                meta={"reason_code": "R018_NO_MEASURE"},
            )
        )
    # --- rules between records, or with values known at validation time --------------
    if kind.name in PAIRING_REFERENCES:
        _field(kind, "pairing_code")
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                # '<file>\x1f<pairing code>': the rows of many files are validated in one call,
                # each against the pairings its own unit has registered by then
                column=PAIRING_REF,
                value_set={"$PARAMETER": "known_pairing_refs"},
                description=f"{kind.name}.pairing_code is registered for the reporting unit",
                meta={"reason_code": "R009_UNKNOWN_PAIRING", "column": "pairing_code"},
            )
        )
    if kind.name == "activities":
        out.extend(_activity_rules(kind, gxe, Column))
    if kind.name == "pairings":
        _field(kind, "paired_on")
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="paired_on",
                max_value={"$PARAMETER": "today"},
                description="pairings.paired_on is not in the future",
                meta={"reason_code": "R013_DATE_IN_FUTURE"},
            )
        )
        _field(kind, "ended_on")
        out.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ended_on",
                column_B="paired_on",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description="pairings.ended_on is not before paired_on",
                meta={
                    "reason_code": "R014_END_BEFORE_START",
                    "column": "ended_on",
                    "other_column": "paired_on",
                },
            )
        )
    return out


def _activity_rules(kind: RecordKind, gxe: Any, Column: Any) -> list[Any]:  # noqa: N803 - GX's class
    """The rules between an activity's fields and its file's period."""
    out: list[Any] = []
    _field(kind, "activity_date")
    # each row carries its file's period (many files, many periods, in one call)
    for column_a, column_b, what in (
        ("activity_date", PERIOD_START, "on or after the first day of the report period"),
        (PERIOD_END, "activity_date", "on or before the last day of the report period"),
    ):
        out.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=column_a,
                column_B=column_b,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description=f"activities.activity_date is {what}",
                meta={"reason_code": "R010_DATE_OUTSIDE_PERIOD", "column": "activity_date"},
            )
        )
    _field(kind, "participants")
    _field(kind, "party_member_participants")
    out.append(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="participants",
            column_B="party_member_participants",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            # a negative participants count is already R004; comparing with it says nothing
            row_condition=Column("participants") >= 0,
            description="activities.party_member_participants is at most participants",
            meta={
                "reason_code": "R011_PARTY_ABOVE_PARTICIPANTS",
                "column": "party_member_participants",
                "other_column": "participants",
            },
        )
    )
    return out


def build_suite(kind: RecordKind) -> ExpectationSuite:
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=suite_name(kind.name),
        expectations=_expectations(kind),
        meta={"generated_by": "expectations/build_suites.py", "record_kind": kind.name},
    )


def render(kind: RecordKind) -> str:
    """The suite as committed: GX's own serialisation, keys sorted, indented."""
    data = build_suite(kind).to_json_dict()
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed suite differs from contract.py")
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the suites (default: this folder)")
    args = parser.parse_args(argv)

    stale: list[str] = []
    for kind in RECORD_KINDS.values():
        path = suite_path(kind.name, args.out)
        text = render(kind)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            f"stale GX suites: {', '.join(stale)}; run: python expectations/build_suites.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
