-- Check total_row_reconciliation (warning): per reporting unit × period, over the files that
-- are a current version (of at least one record kind): fails when one of them carries a
-- W002_TOTAL_MISMATCH warning — its 合计 row does not add up to its detail rows.
-- observed_value = failing_rows = number of mismatching totals.

with

submission_kinds as (

    select * from {{ ref('int_submission_kinds_versioned') }}

),

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}

),

problems as (

    select * from {{ ref('stg_audit__submission_problems') }}

),

current_files as (

    select
        submissions.submission_id,
        submissions.reporting_unit_code,
        submissions.period_code,
        submissions.original_file_name

    from submissions
    where exists (
        select from submission_kinds
        where
            submission_kinds.submission_id = submissions.submission_id
            and submission_kinds.is_current
    )

),

mismatches as (

    select
        current_files.reporting_unit_code,
        current_files.period_code,
        current_files.submission_id,
        current_files.original_file_name,
        problems.source_sheet,
        problems.source_row_number,
        problems.column_name,
        problems.cell_value,
        problems.message_zh,
        problems.message_en,
        row_number() over (
            partition by current_files.reporting_unit_code, current_files.period_code
            order by current_files.submission_id desc, problems.problem_number
        ) as mismatch_rank

    from current_files
    inner join problems
        on current_files.submission_id = problems.submission_id
    where
        problems.problem_kind = 'warning'
        and problems.problem_code = 'W002_TOTAL_MISMATCH'

),

grouped as (

    select
        current_files.reporting_unit_code,
        current_files.period_code,
        count(distinct current_files.submission_id) as current_file_count,
        count(mismatches.submission_id) as mismatch_count,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'submission_id', mismatches.submission_id,
                    'file_name', mismatches.original_file_name,
                    'sheet', mismatches.source_sheet,
                    'row', mismatches.source_row_number,
                    'column', mismatches.column_name,
                    'value', mismatches.cell_value,
                    'message_zh', mismatches.message_zh,
                    'message_en', mismatches.message_en
                )
                order by mismatches.mismatch_rank
            ) filter (where mismatches.mismatch_rank <= 5),
            '[]'::jsonb
        ) as examples

    from current_files
    left join mismatches
        on current_files.submission_id = mismatches.submission_id
    group by current_files.reporting_unit_code, current_files.period_code

),

final as (

    select
        'total_row_reconciliation'::text as check_name,
        'warning'::text as severity,
        reporting_unit_code,
        period_code,
        case when mismatch_count > 0 then 'fail' else 'pass' end::text as outcome,
        mismatch_count::numeric as observed_value,
        mismatch_count::integer as failing_rows,
        case
            when mismatch_count > 0 then format('%s 处合计行与明细合计不符', mismatch_count)
            else format('合计行与明细一致（%s 个现行文件）', current_file_count)
        end as detail_zh,
        case
            when mismatch_count > 0 then format(
                '%s total %s not add up to the detail rows',
                mismatch_count, case when mismatch_count = 1 then 'row does' else 'rows do' end
            )
            else format('total rows add up (%s current %s)',
                current_file_count, case when current_file_count = 1 then 'file' else 'files' end)
        end as detail_en,
        examples

    from grouped

)

select * from final
