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

--
-- Incremental by pairing: the pre-hook compares a fingerprint of each pairing's fact rows
-- (from the facts' lineage) with the one recorded after the last build and deletes the
-- pairings that changed; this select judges every figure of exactly those pairings again
-- (a new month changes the history of all of a pairing's other months). A change of the
-- outlier vars rebuilds all. Every step joins whole series: nested loops are off for this
-- model's transaction, so that a misestimate (stale statistics) cannot make the final
-- joins quadratic in the figures.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "set local enable_nestloop = off",
            "{{ ensure_fact_lineage('fct_activity_counts') }}",
            "{{ ensure_fact_lineage('fct_income_effects') }}",
            "{{ refresh_by_fingerprint('pairing_id', outlier_fingerprints_sql()) }}",
        ],
        post_hook="{{ record_fingerprints() }}",
        indexes=[{'columns': ['pairing_id']}],
    )
}}

with

activity_counts as (

    select * from {{ ref('fct_activity_counts') }}
    {%- if is_incremental() %}
    where {{ in_refresh_pairings() }}
    {%- endif %}

),

income_effects as (

    select * from {{ ref('fct_income_effects') }}
    {%- if is_incremental() %}
    where {{ in_refresh_pairings() }}
    {%- endif %}

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

-- Leave-one-out without pairing every figure with every other one (that grew with the
-- square of the history): a series (pairing × measure × grain) of n figures, sorted once.
-- Leaving out a figure of rank r, the other m = n − 1 figures have their median at their
-- positions a = ceil(m/2) and b = floor(m/2) + 1 (the two middle ones, equal when m is odd)
-- — the positions percentile_disc(0.5) takes ascending and descending, as exact_median —
-- which are positions a or a + 1 and b or b + 1 of the whole series: (a, b) when r > b,
-- (a, b + 1) when a < r <= b, (a + 1, b + 1) when r <= a. So a series has at most three
-- leave-one-out medians (`candidate`). For each, the absolute deviations of the whole series
-- are sorted once; the MAD leaving a figure out is the median of the others' deviations —
-- the same position shift around the figure's own deviation — and the mean absolute
-- deviation is (sum of all deviations − its own) / m. Tied values give the same others
-- whichever of them is left out, so the first position of a value stands for any.
series as (

    select
        pairing_id,
        measure,
        period_grain,
        count(*)::integer as figure_count,
        array_agg(figure_value order by figure_value) as sorted_values

    from figures
    group by pairing_id, measure, period_grain

),

placed as (

    select
        figures.*,
        series.sorted_values,
        series.figure_count - 1 as history_periods,
        series.figure_count / 2 as low_position,  -- a = ceil(m / 2) with m = n - 1
        (series.figure_count - 1) / 2 + 1 as high_position,  -- b = floor(m / 2) + 1
        array_position(series.sorted_values, figures.figure_value) as value_rank

    from figures
    inner join series
        on
            figures.pairing_id = series.pairing_id
            and figures.measure = series.measure
            and figures.period_grain = series.period_grain

),

candidates_of_figures as (

    select
        *,
        case
            when value_rank > high_position then 1
            when value_rank > low_position then 2
            else 3
        end as candidate

    from placed
    where history_periods > 0

),

candidate_medians as (

    select distinct
        pairing_id,
        measure,
        period_grain,
        candidate,
        sorted_values,
        low_position,
        high_position,
        trim_scale(
            (
                sorted_values[low_position + (candidate = 3)::integer]
                + sorted_values[high_position + (candidate >= 2)::integer]
            ) * 0.5
        ) as history_median

    from candidates_of_figures

),

candidate_spreads as (

    select
        candidate_medians.pairing_id,
        candidate_medians.measure,
        candidate_medians.period_grain,
        candidate_medians.candidate,
        candidate_medians.history_median,
        array_agg(
            abs(series_values.figure_value - candidate_medians.history_median)
            order by abs(series_values.figure_value - candidate_medians.history_median)
        ) as sorted_deviations,
        sum(abs(series_values.figure_value - candidate_medians.history_median)) as deviation_sum

    from candidate_medians
    cross join lateral unnest(candidate_medians.sorted_values) as series_values (figure_value)
    group by 1, 2, 3, 4, 5

),

spreads as (

    select
        candidates_of_figures.pairing_id,
        candidates_of_figures.measure,
        candidates_of_figures.period_code,
        candidate_spreads.history_median,
        own.deviation,
        candidate_spreads.sorted_deviations,
        candidate_spreads.deviation_sum,
        candidates_of_figures.history_periods,
        candidates_of_figures.low_position,
        candidates_of_figures.high_position,
        array_position(candidate_spreads.sorted_deviations, own.deviation) as deviation_rank

    from candidates_of_figures
    inner join candidate_spreads
        on
            candidates_of_figures.pairing_id = candidate_spreads.pairing_id
            and candidates_of_figures.measure = candidate_spreads.measure
            and candidates_of_figures.period_grain = candidate_spreads.period_grain
            and candidates_of_figures.candidate = candidate_spreads.candidate
    cross join
        lateral (
            select abs(candidates_of_figures.figure_value - candidate_spreads.history_median) as deviation
        ) as own

),

history_stats as (

    select
        pairing_id,
        measure,
        period_code,
        history_median,
        trim_scale(
            (
                sorted_deviations[low_position + (low_position >= deviation_rank)::integer]
                + sorted_deviations[high_position + (high_position >= deviation_rank)::integer]
            ) * 0.5
        ) as history_mad,
        (deviation_sum - deviation) / history_periods as history_mean_ad

    from spreads

),

scored as (

    select
        placed.reporting_unit_code,
        placed.pairing_id,
        placed.pairing_code,
        placed.period_code,
        placed.period_grain,
        placed.period_start,
        placed.report_period_code,
        placed.measure,
        placed.figure_value,
        placed.is_approximate,
        placed.history_periods,
        history_stats.history_median,
        history_stats.history_mad,
        trim_scale(round(history_stats.history_mean_ad, 6)) as history_mean_ad,
        round(
            case
                when placed.history_periods < {{ quality_integer('outlier_min_history') }}
                    then null
                when history_stats.history_mad > 0
                    then 0.6745 * (placed.figure_value - history_stats.history_median) / history_stats.history_mad
                when history_stats.history_mean_ad > 0
                    then (placed.figure_value - history_stats.history_median)
                    / (1.253314 * history_stats.history_mean_ad)
            end,
            4
        ) as modified_z,
        case
            when placed.figure_value > 0 and history_stats.history_median > 0
                then round(
                    greatest(
                        placed.figure_value / history_stats.history_median,
                        history_stats.history_median / placed.figure_value
                    ),
                    4
                )
        end as ratio_to_median

    from placed
    left join history_stats
        on
            placed.pairing_id = history_stats.pairing_id
            and placed.measure = history_stats.measure
            and placed.period_code = history_stats.period_code

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
