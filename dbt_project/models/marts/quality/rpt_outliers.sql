-- Outliers in each pairing's own history: one row per pairing × period × measure, the figure
-- judged against the pairing's OTHER periods of the same measure and grain (leave-one-out)
-- with the modified z-score (Iglewicz & Hoaglin): 0.6745 × (value − median) / MAD, or, when
-- the MAD is 0, (value − median) / (1.253314 × mean absolute deviation from the median).
-- Measures: participants per pairing × activity month (fct_activity_counts), and the four
-- money/volume measures per pairing × report period (fct_income_effects); a measure the
-- report left empty (NULL, not reported) is no figure — it is neither judged nor counted in
-- the history of the pairing's other periods.
-- With five or six periods of history the MAD can be tiny by chance, and a figure 30 % off
-- its median would score z > 10; so a figure is an outlier only when it is also at least
-- var outlier_min_ratio (2) times the median, or at most 1/ratio of it (positive figures;
-- a loss or a zero median is judged by z alone). Typos — an extra zero, 万元 for 元 — pass
-- both; a normal month's variation does not.

with

activity_counts as (

    select * from {{ ref('fct_activity_counts') }}

),

income_effects as (

    select * from {{ ref('fct_income_effects') }}

),

participant_figures as (

    select
        reporting_unit_code,
        pairing_id,
        pairing_code,
        month_code as period_code,
        'month' as period_grain,
        activity_month as period_start,
        -- the report the month came in (one per month unless a unit mixes grains)
        max(period_code) as report_period_code,
        'participants' as measure,
        sum(participants)::numeric as figure_value,
        bool_or(is_approximate) as is_approximate

    from activity_counts
    group by reporting_unit_code, pairing_id, pairing_code, month_code, activity_month

),

income_figures as (

    select
        income_effects.reporting_unit_code,
        income_effects.pairing_id,
        income_effects.pairing_code,
        income_effects.period_code,
        income_effects.period_grain,
        income_effects.period_start,
        income_effects.period_code as report_period_code,
        measures.measure,
        measures.figure_value,
        income_effects.is_approximate

    from income_effects
    cross join lateral (
        values
        ('collective_income_increase_yuan', income_effects.collective_income_increase_yuan::numeric),
        ('villager_income_increase_yuan', income_effects.villager_income_increase_yuan::numeric),
        ('produce_sold_tonnes', income_effects.produce_sold_tonnes::numeric),
        ('produce_sales_yuan', income_effects.produce_sales_yuan::numeric)
    ) as measures (measure, figure_value)
    -- a measure left empty (not reported) is no figure: neither judged nor part of a history
    where measures.figure_value is not null

),

figures as (

    select * from participant_figures
    union all
    select * from income_figures

),

-- every figure × each other period of the same pairing, measure and grain
history as (

    select
        figures.pairing_id,
        figures.measure,
        figures.period_code,
        others.figure_value as other_value

    from figures
    inner join figures as others
        on
            figures.pairing_id = others.pairing_id
            and figures.measure = others.measure
            and figures.period_grain = others.period_grain
            and figures.period_code <> others.period_code

),

history_medians as (

    select
        pairing_id,
        measure,
        period_code,
        count(*)::integer as history_periods,
        {{ exact_median('other_value') }} as history_median

    from history
    group by pairing_id, measure, period_code

),

history_spreads as (

    select
        history.pairing_id,
        history.measure,
        history.period_code,
        {{ exact_median('abs(history.other_value - history_medians.history_median)') }} as history_mad,
        avg(abs(history.other_value - history_medians.history_median)) as history_mean_ad

    from history
    inner join history_medians
        on
            history.pairing_id = history_medians.pairing_id
            and history.measure = history_medians.measure
            and history.period_code = history_medians.period_code
    group by history.pairing_id, history.measure, history.period_code

),

scored as (

    select
        figures.*,
        coalesce(history_medians.history_periods, 0) as history_periods,
        history_medians.history_median,
        history_spreads.history_mad,
        trim_scale(round(history_spreads.history_mean_ad, 6)) as history_mean_ad,
        round(
            case
                when coalesce(history_medians.history_periods, 0) < {{ quality_integer('outlier_min_history') }}
                    then null
                when history_spreads.history_mad > 0
                    then 0.6745 * (figures.figure_value - history_medians.history_median) / history_spreads.history_mad
                when history_spreads.history_mean_ad > 0
                    then (figures.figure_value - history_medians.history_median)
                    / (1.253314 * history_spreads.history_mean_ad)
            end,
            4
        ) as modified_z,
        case
            when figures.figure_value > 0 and history_medians.history_median > 0
                then round(
                    greatest(
                        figures.figure_value / history_medians.history_median,
                        history_medians.history_median / figures.figure_value
                    ),
                    4
                )
        end as ratio_to_median

    from figures
    left join history_medians
        on
            figures.pairing_id = history_medians.pairing_id
            and figures.measure = history_medians.measure
            and figures.period_code = history_medians.period_code
    left join history_spreads
        on
            figures.pairing_id = history_spreads.pairing_id
            and figures.measure = history_spreads.measure
            and figures.period_code = history_spreads.period_code

),

flagged as (

    select
        *,
        coalesce(
            abs(modified_z) > {{ quality_number('outlier_z_threshold') }}
            and history_periods >= {{ quality_integer('outlier_min_history') }}
            and (ratio_to_median is null or ratio_to_median >= {{ quality_number('outlier_min_ratio') }}),
            false
        ) as is_outlier

    from scored

),

final as (

    select
        ----------  ids
        {{ surrogate_key(['reporting_unit_code', 'pairing_code', 'period_code', 'measure']) }} as outlier_check_id,
        reporting_unit_code,
        pairing_id,
        pairing_code,

        ---------- periods
        period_code,
        period_grain,
        period_start,
        report_period_code,

        ---------- the figure
        measure,
        figure_value as value,
        is_approximate,

        ---------- its history (the pairing's other periods)
        history_periods,
        history_median,
        history_mad,
        history_mean_ad,

        ---------- verdict
        modified_z,
        ratio_to_median,
        is_outlier,
        case
            when is_outlier and modified_z > 0 then 'high'
            when is_outlier then 'low'
        end as direction

    from flagged

)

select * from final
