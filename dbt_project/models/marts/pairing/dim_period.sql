-- Calendar periods for reports and roll-ups: every month, quarter and year from
-- var('period_first_year') to var('period_last_year'). Codes as the contract writes them:
-- 2025-06, 2025Q2, 2025. Independent of the data, so a rebuild never changes it.

with

months as (

    select month_start::date as month_start
    from generate_series(
        make_date({{ var('period_first_year') }}, 1, 1),
        make_date({{ var('period_last_year') }}, 12, 1),
        interval '1 month'
    ) as series (month_start)

),

quarter_names as (

    select *
    from (values (1, '一'), (2, '二'), (3, '三'), (4, '四')) as quarter_labels (quarter_number, name_zh)

),

periods as (

    select
        {{ month_code('month_start') }} as period_code,
        'month' as period_grain,
        month_start as period_start,
        (month_start + interval '1 month' - interval '1 day')::date as period_end

    from months

    union all

    select
        {{ quarter_code('month_start') }} as period_code,
        'quarter' as period_grain,
        month_start as period_start,
        (month_start + interval '3 months' - interval '1 day')::date as period_end

    from months
    where extract(month from month_start) in (1, 4, 7, 10)

    union all

    select
        {{ year_code('month_start') }} as period_code,
        'year' as period_grain,
        month_start as period_start,
        (month_start + interval '1 year' - interval '1 day')::date as period_end

    from months
    where extract(month from month_start) = 1

),

final as (

    select
        periods.period_code,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        extract(year from periods.period_start)::integer as year_number,
        case
            when periods.period_grain <> 'year'
                then extract(quarter from periods.period_start)::integer
        end as quarter_number,
        case
            when periods.period_grain = 'month'
                then extract(month from periods.period_start)::integer
        end as month_number,
        case
            when periods.period_grain <> 'year'
                then {{ quarter_code('periods.period_start') }}
        end as quarter_code,
        {{ year_code('periods.period_start') }} as year_code,
        case periods.period_grain
            when 'month'
                then
                    to_char(periods.period_start, 'YYYY') || '年'
                    || extract(month from periods.period_start)::integer || '月'
            when 'quarter' then to_char(periods.period_start, 'YYYY') || '年第' || quarter_names.name_zh || '季度'
            else to_char(periods.period_start, 'YYYY') || '年'
        end as label_zh,
        case periods.period_grain
            when 'month' then to_char(periods.period_start, 'FMMonth YYYY')
            when 'quarter' then to_char(periods.period_start, 'YYYY "Q"Q')
            else to_char(periods.period_start, 'YYYY')
        end as label_en,
        (periods.period_end - periods.period_start + 1)::integer as day_count

    from periods
    left join quarter_names
        on extract(quarter from periods.period_start) = quarter_names.quarter_number

)

select * from final
