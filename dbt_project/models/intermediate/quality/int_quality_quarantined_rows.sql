-- Check quarantined_rows (warning): per reporting unit × period with a current version, the
-- rows quarantined from the current version of each record kind (a correction that loads
-- cleanly clears its period). The current registrations of a unit (pairings-only files, no
-- period) make one row with an empty period (joined null-safely, so their quarantined rows
-- are not lost). observed_value = failing_rows = quarantined source rows; examples = one
-- object per reason code, most rows first, with its first source rows.

with

submission_kinds as (

    select * from {{ ref('int_submission_kinds_versioned') }}
    where is_current

),

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}

),

rejected_rows as (

    select * from {{ ref('stg_quarantine__rejected_rows') }}

),

current_rejected as (

    select
        submission_kinds.reporting_unit_code,
        submission_kinds.period_code,
        rejected_rows.submission_id,
        submissions.original_file_name,
        rejected_rows.record_kind,
        rejected_rows.source_sheet,
        rejected_rows.source_row_number,
        rejected_rows.reason_code,
        rejected_rows.reason_zh,
        rejected_rows.reason_en

    from rejected_rows
    inner join submission_kinds
        on
            rejected_rows.submission_id = submission_kinds.submission_id
            and rejected_rows.record_kind = submission_kinds.record_kind
    inner join submissions
        on rejected_rows.submission_id = submissions.submission_id

),

by_reason as (

    select
        reporting_unit_code,
        period_code,
        reason_code,
        count(distinct submission_id || chr(31) || record_kind || chr(31) || coalesce(source_sheet, '')
            || chr(31) || source_row_number) as row_count,
        min(reason_zh) as reason_zh,
        min(reason_en) as reason_en,
        (array_agg(
            jsonb_build_object(
                'file_name', original_file_name,
                'sheet', source_sheet,
                'row', source_row_number
            )
            order by submission_id, source_sheet, source_row_number
        ))[1:3] as first_rows

    from current_rejected
    group by reporting_unit_code, period_code, reason_code

),

ranked_reasons as (

    select
        *,
        row_number() over (
            partition by reporting_unit_code, period_code
            order by row_count desc, reason_code
        ) as reason_rank

    from by_reason

),

row_counts as (

    select
        reporting_unit_code,
        period_code,
        count(distinct submission_id || chr(31) || record_kind || chr(31) || coalesce(source_sheet, '')
            || chr(31) || source_row_number) as quarantined_row_count

    from current_rejected
    group by reporting_unit_code, period_code

),

reasons as (

    select
        reporting_unit_code,
        period_code,
        string_agg(reason_code, ', ' order by reason_rank) as reason_codes,
        jsonb_agg(
            jsonb_build_object(
                'reason_code', reason_code,
                'rows', row_count,
                'reason_zh', reason_zh,
                'reason_en', reason_en,
                'first_rows', to_jsonb(first_rows)
            )
            order by reason_rank
        ) filter (where reason_rank <= 5) as examples

    from ranked_reasons
    group by reporting_unit_code, period_code

),

unit_periods as (

    select distinct
        reporting_unit_code,
        period_code

    from submission_kinds

),

final as (

    select
        'quarantined_rows'::text as check_name,
        'warning'::text as severity,
        unit_periods.reporting_unit_code,
        unit_periods.period_code,
        case when coalesce(row_counts.quarantined_row_count, 0) > 0 then 'fail' else 'pass' end::text as outcome,
        coalesce(row_counts.quarantined_row_count, 0)::numeric as observed_value,
        coalesce(row_counts.quarantined_row_count, 0)::integer as failing_rows,
        case
            when row_counts.quarantined_row_count > 0
                then format('现行版本中 %s 行被隔离（%s）', row_counts.quarantined_row_count, reasons.reason_codes)
            else '现行版本无隔离行'
        end as detail_zh,
        case
            when row_counts.quarantined_row_count > 0 then format(
                '%s %s of the current versions quarantined (%s)',
                row_counts.quarantined_row_count,
                case when row_counts.quarantined_row_count = 1 then 'row' else 'rows' end,
                reasons.reason_codes
            )
            else 'no row of the current versions quarantined'
        end as detail_en,
        coalesce(reasons.examples, '[]'::jsonb) as examples

    from unit_periods
    left join row_counts
        on
            unit_periods.reporting_unit_code = row_counts.reporting_unit_code
            and unit_periods.period_code is not distinct from row_counts.period_code
    left join reasons
        on
            unit_periods.reporting_unit_code = reasons.reporting_unit_code
            and unit_periods.period_code is not distinct from reasons.period_code

)

select * from final
