-- Check row_reconciliation (error): per reporting unit × period, over every loaded file
-- (current or superseded): fails when a file does not account for its rows — rows_received
-- <> rows_loaded + rows_quarantined, or its rows in raw.* (all four tables) <> rows_loaded, or
-- the distinct rows it has in quarantine.rejected_rows <> rows_quarantined.
-- observed_value = rows unaccounted for (sum of the three gaps); failing_rows = files.
-- The raw rows per file come from int_quality_raw_row_counts (each file counted once).

with

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}
    where submission_status = 'loaded'

),

raw_counts as (

    -- incremental: each file counted once, all again when raw.* changed otherwise
    select * from {{ ref('int_quality_raw_row_counts') }}

),

rejected_rows as (

    select * from {{ ref('stg_quarantine__rejected_rows') }}

),

quarantine_counts as (

    select
        submission_id,
        -- one row per problem: count each source row once
        count(distinct record_kind || chr(31) || coalesce(source_sheet, '') || chr(31) || source_row_number)
            as quarantined_row_count

    from rejected_rows
    group by submission_id

),

files as (

    select
        submissions.submission_id,
        submissions.reporting_unit_code,
        submissions.period_code,
        submissions.original_file_name,
        submissions.rows_received,
        submissions.rows_loaded,
        submissions.rows_quarantined,
        coalesce(raw_counts.raw_row_count, 0) as raw_row_count,
        coalesce(quarantine_counts.quarantined_row_count, 0) as quarantined_row_count

    from submissions
    left join raw_counts
        on submissions.submission_id = raw_counts.submission_id
    left join quarantine_counts
        on submissions.submission_id = quarantine_counts.submission_id

),

gaps as (

    select
        *,
        abs(rows_received - rows_loaded - rows_quarantined)
        + abs(raw_row_count - rows_loaded)
        + abs(quarantined_row_count - rows_quarantined) as rows_unaccounted

    from files

),

ranked as (

    select
        *,
        row_number() over (
            partition by reporting_unit_code, period_code
            order by rows_unaccounted desc, submission_id
        ) as gap_rank

    from gaps

),

grouped as (

    select
        reporting_unit_code,
        period_code,
        count(*) as file_count,
        count(*) filter (where rows_unaccounted > 0) as failing_file_count,
        sum(rows_unaccounted) as rows_unaccounted,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'submission_id', submission_id,
                    'file_name', original_file_name,
                    'rows_received', rows_received,
                    'rows_loaded', rows_loaded,
                    'rows_quarantined', rows_quarantined,
                    'raw_rows', raw_row_count,
                    'quarantined_source_rows', quarantined_row_count
                )
                order by gap_rank
            ) filter (where rows_unaccounted > 0 and gap_rank <= 5),
            '[]'::jsonb
        ) as examples

    from ranked
    group by reporting_unit_code, period_code

),

final as (

    select
        'row_reconciliation'::text as check_name,
        'error'::text as severity,
        reporting_unit_code,
        period_code,
        case when failing_file_count > 0 then 'fail' else 'pass' end::text as outcome,
        rows_unaccounted::numeric as observed_value,
        failing_file_count::integer as failing_rows,
        case
            when failing_file_count > 0 then format(
                '%s 个文件行数对不上（差 %s 行）：收到 = 载入 + 隔离，载入 = 原始表行数，隔离 = 隔离区行数',
                failing_file_count, rows_unaccounted
            )
            else format('%s 个文件行数一致', file_count)
        end as detail_zh,
        case
            when failing_file_count > 0 then format(
                '%s %s do not reconcile (%s rows unaccounted for): received = loaded + quarantined, '
                || 'loaded = rows in raw, quarantined = rows in quarantine',
                failing_file_count, case when failing_file_count = 1 then 'file' else 'files' end, rows_unaccounted
            )
            else format('rows reconcile in %s %s', file_count, case when file_count = 1 then 'file' else 'files' end)
        end as detail_en,
        examples

    from grouped

)

select * from final
