-- Check reporting_completeness (error): one row per expected unit × period whose deadline has
-- passed or that has been received (rpt_reporting_completeness, status not pending); fails
-- when the period came late or not at all. observed_value = days late (0 when on time).

with

completeness as (

    select * from {{ ref('rpt_reporting_completeness') }}
    where is_expected and status <> 'pending'

),

final as (

    select
        'reporting_completeness'::text as check_name,
        'error'::text as severity,
        reporting_unit_code,
        period_code,
        case when status in ('late', 'missing') then 'fail' else 'pass' end::text as outcome,
        coalesce(days_late, 0)::numeric as observed_value,
        (status in ('late', 'missing'))::integer as failing_rows,
        case status
            when 'on_time' then format(
                '按时报送（截止 %s，%s 收到）', {{ iso_date('deadline_date') }}, {{ iso_date('received_date') }}
            )
            when 'late' then format(
                '迟报 %s 天（截止 %s，%s 收到）',
                days_late, {{ iso_date('deadline_date') }}, {{ iso_date('received_date') }}
            )
            else format(
                '未报送（截止 %s，截至 %s 已逾期 %s 天）',
                {{ iso_date('deadline_date') }}, {{ iso_date('quality_as_of') }}, days_late
            )
        end as detail_zh,
        case status
            when 'on_time' then format(
                'on time (deadline %s, received %s)', {{ iso_date('deadline_date') }}, {{ iso_date('received_date') }}
            )
            when 'late' then format(
                '%s %s late (deadline %s, received %s)',
                days_late, case when days_late = 1 then 'day' else 'days' end,
                {{ iso_date('deadline_date') }}, {{ iso_date('received_date') }}
            )
            else format(
                'missing (deadline %s, %s %s overdue on %s)',
                {{ iso_date('deadline_date') }}, days_late, case when days_late = 1 then 'day' else 'days' end,
                {{ iso_date('quality_as_of') }}
            )
        end as detail_en,
        jsonb_build_array(
            jsonb_strip_nulls(
                jsonb_build_object(
                    'unit_name', unit_name,
                    'period_code', period_code,
                    'status', status,
                    'deadline_date', {{ iso_date('deadline_date') }},
                    'received_at', {{ shanghai_time('first_received_at') }},
                    'submission_id', received_submission_id,
                    'days_late', days_late
                )
            )
        ) as examples

    from completeness

)

select * from final
