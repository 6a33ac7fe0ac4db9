-- Check refused_files (error): per reporting unit × period as the files stated them (either
-- may be empty when the file did not say), one row for every unit × period that has any
-- file. Fails while a refused file is unresolved: its receipt (a re-run counts for the
-- original) has no later attempt that loaded, and no file of the same unit × period loaded
-- after it was received. A refused file without a period (a pairings-only registration, or
-- one whose period could not be read) counts under its unit and an empty period; since
-- registrations never replace one another, only a re-run of its receipt resolves it — like
-- audit.submission_versions, where only a re-run replaces a registration's earlier attempt.
-- observed_value = failing_rows = unresolved refused files.

with

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}

),

problems as (

    select * from {{ ref('stg_audit__submission_problems') }}
    where problem_kind = 'error'

),

unresolved as (

    select refused.*

    from submissions as refused
    where
        refused.submission_status = 'rejected'
        and not exists (
            select from submissions as retried
            where
                retried.submission_status = 'loaded'
                and retried.submission_id > refused.submission_id
                and coalesce(retried.reprocess_of_submission_id, retried.submission_id)
                = coalesce(refused.reprocess_of_submission_id, refused.submission_id)
        )
        and not exists (
            select from submissions as replaced
            where
                replaced.submission_status = 'loaded'
                -- a period-less file (null) is replaced by no other file, only by its re-run
                and replaced.reporting_unit_code = refused.reporting_unit_code
                and replaced.period_code = refused.period_code
                and (replaced.received_at, replaced.submission_id) > (refused.received_at, refused.submission_id)
        )

),

first_errors as (

    select distinct on (submission_id)
        submission_id,
        problem_code,
        message_zh,
        message_en

    from problems
    order by submission_id, problem_number

),

ranked as (

    select
        unresolved.submission_id,
        unresolved.reporting_unit_code,
        unresolved.period_code,
        unresolved.original_file_name,
        unresolved.received_at,
        first_errors.problem_code,
        first_errors.message_zh,
        first_errors.message_en,
        -- the longest-waiting first
        row_number() over (
            partition by unresolved.reporting_unit_code, unresolved.period_code
            order by unresolved.received_at, unresolved.submission_id
        ) as refusal_rank

    from unresolved
    left join first_errors
        on unresolved.submission_id = first_errors.submission_id

),

unit_periods as (

    select
        reporting_unit_code,
        period_code,
        count(*) as file_count

    from submissions
    group by reporting_unit_code, period_code

),

grouped as (

    select
        unit_periods.reporting_unit_code,
        unit_periods.period_code,
        unit_periods.file_count,
        count(ranked.submission_id) as refused_count,
        string_agg(distinct ranked.problem_code, ', ') as problem_codes,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'submission_id', ranked.submission_id,
                    'file_name', ranked.original_file_name,
                    'received_at', {{ shanghai_time('ranked.received_at') }},
                    'code', ranked.problem_code,
                    'message_zh', ranked.message_zh,
                    'message_en', ranked.message_en
                )
                order by ranked.refusal_rank
            ) filter (where ranked.refusal_rank <= 5),
            '[]'::jsonb
        ) as examples

    from unit_periods
    left join ranked
        on
            unit_periods.reporting_unit_code is not distinct from ranked.reporting_unit_code
            and unit_periods.period_code is not distinct from ranked.period_code
    group by unit_periods.reporting_unit_code, unit_periods.period_code, unit_periods.file_count

),

final as (

    select
        'refused_files'::text as check_name,
        'error'::text as severity,
        reporting_unit_code,
        period_code,
        case when refused_count > 0 then 'fail' else 'pass' end::text as outcome,
        refused_count::numeric as observed_value,
        refused_count::integer as failing_rows,
        case
            when refused_count > 0 then format('%s 个文件被拒收且尚未重新报送（%s）', refused_count, problem_codes)
            else format('无未处理的拒收文件（%s 个文件）', file_count)
        end as detail_zh,
        case
            when refused_count > 0 then format(
                '%s refused %s not yet replaced (%s)',
                refused_count, case when refused_count = 1 then 'file' else 'files' end, problem_codes
            )
            else format('no unresolved refused file (%s %s)',
                file_count, case when file_count = 1 then 'file' else 'files' end)
        end as detail_en,
        examples

    from grouped

)

select * from final
