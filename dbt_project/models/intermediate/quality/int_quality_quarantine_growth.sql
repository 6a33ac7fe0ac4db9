-- Check quarantine_growth (warning, whole warehouse): the share of rows quarantined among the
-- rows received in files loaded in the var quarantine_window_days days up to quality_as_of
-- (receipt dates in Asia/Shanghai, quality_as_of included); fails above var
-- quarantine_share_max. observed_value = the share (0..1, empty when no row was received);
-- failing_rows = rows quarantined; examples = the files with most rows quarantined.

with

as_of as (

    select {{ quality_as_of() }} as quality_as_of

),

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}
    where submission_status = 'loaded'

),

window_files as (

    select
        submissions.*,
        as_of.quality_as_of

    from submissions
    cross join as_of
    where
        (submissions.received_at at time zone 'Asia/Shanghai')::date
        > as_of.quality_as_of - {{ quality_integer('quarantine_window_days') }}
        and (submissions.received_at at time zone 'Asia/Shanghai')::date <= as_of.quality_as_of

),

ranked as (

    select
        *,
        row_number() over (order by rows_quarantined desc, submission_id) as file_rank

    from window_files

),

overall as (

    select
        as_of.quality_as_of,
        count(ranked.submission_id) as file_count,
        coalesce(sum(ranked.rows_received), 0) as rows_received,
        coalesce(sum(ranked.rows_quarantined), 0) as rows_quarantined,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'submission_id', ranked.submission_id,
                    'file_name', ranked.original_file_name,
                    'reporting_unit_code', ranked.reporting_unit_code,
                    'period_code', ranked.period_code,
                    'rows_received', ranked.rows_received,
                    'rows_quarantined', ranked.rows_quarantined
                )
                order by ranked.file_rank
            ) filter (where ranked.rows_quarantined > 0 and ranked.file_rank <= 5),
            '[]'::jsonb
        ) as examples

    from as_of
    left join ranked
        on true
    group by as_of.quality_as_of

),

shares as (

    select
        *,
        round(rows_quarantined::numeric / nullif(rows_received, 0), 4) as quarantined_share

    from overall

),

final as (

    select
        'quarantine_growth'::text as check_name,
        'warning'::text as severity,
        null::text as reporting_unit_code,
        null::text as period_code,
        case
            when quarantined_share > {{ quality_number('quarantine_share_max') }} then 'fail' else 'pass'
        end::text as outcome,
        quarantined_share as observed_value,
        rows_quarantined::integer as failing_rows,
        case
            when rows_received = 0 then format(
                '近 %s 天（截至 %s）未收到数据行',
                {{ quality_integer('quarantine_window_days') }}, {{ iso_date('quality_as_of') }}
            )
            else format(
                '近 %s 天（截至 %s）%s 个文件收到 %s 行，隔离 %s 行（%s%%，上限 %s%%）',
                {{ quality_integer('quarantine_window_days') }}, {{ iso_date('quality_as_of') }}, file_count,
                rows_received, rows_quarantined, round(100 * quarantined_share, 1),
                round(100 * {{ quality_number('quarantine_share_max') }}::numeric, 1)
            )
        end as detail_zh,
        case
            when rows_received = 0 then format(
                'no row received in the %s days up to %s',
                {{ quality_integer('quarantine_window_days') }}, {{ iso_date('quality_as_of') }}
            )
            else format(
                '%s rows received in %s files in the %s days up to %s, %s quarantined (%s%%; limit %s%%)',
                rows_received, file_count, {{ quality_integer('quarantine_window_days') }},
                {{ iso_date('quality_as_of') }}, rows_quarantined, round(100 * quarantined_share, 1),
                round(100 * {{ quality_number('quarantine_share_max') }}::numeric, 1)
            )
        end as detail_en,
        examples

    from shares

)

select * from final
