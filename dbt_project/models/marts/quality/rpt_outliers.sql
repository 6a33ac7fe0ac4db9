-- Outliers in each pairing's own history: one row per pairing × period × measure, the figure
-- judged against a window of the pairing's OTHER periods of the same measure and grain with
-- the modified z-score (Iglewicz & Hoaglin): 0.6745 × (value − median) / MAD, or, when the
-- MAD is 0, (value − median) / (1.253314 × mean absolute deviation from the median).
-- The window (macros/outliers.sql): at most var outlier_window (W, 6) other periods — the
-- figure's W predecessors, or, for a series' first W figures, the others of its first W + 1
-- (so a short history is judged leave-one-out, every period against all the others). A
-- verdict is final once the figure has W predecessors: a new month adds verdicts and
-- changes none of the older ones.
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
-- Incremental by pairing × date (macro outlier_refresh): the pre-hook finds each changed
-- pairing's earliest changed date from fingerprints of the facts' lineage, deletes the rows
-- judged again (from that date on; a series from its start when the change falls among its
-- first W + 1 figures) and puts the figures this select reads in a temporary table: the new
-- ones from the facts, and the W + 1 before them from this table. A change of the outlier
-- vars judges all again. Every step joins whole series: nested loops are off for this
-- model's transaction, so that a misestimate (stale statistics) cannot make the joins
-- quadratic in the figures.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "set local enable_nestloop = off",
            "{{ ensure_fact_lineage('fct_activity_counts') }}",
            "{{ ensure_fact_lineage('fct_income_effects') }}",
            "{{ outlier_refresh() }}",
        ],
        post_hook="{{ record_outlier_fingerprints() }}",
        indexes=[{'columns': ['pairing_id', 'period_start']}],
    )
}}

with

-- all the figures; or, on an incremental run, the pre-hook's: each changed pairing's new
-- ones and the W + 1 before them (their values as this table holds them)
figures as (

    {%- if is_incremental() %}
    select * from {{ outlier_figures_relation() }}
    {%- else %}
    {{ outlier_new_figures_sql(false) }}
    {%- endif %}

),

-- a series (pairing × measure × grain) in period order; each figure's window is a slice of it
series as (

    select
        pairing_id,
        measure,
        period_grain,
        count(*)::integer as figure_count,
        array_agg(figure_value order by period_start) as values_by_period

    from figures
    group by pairing_id, measure, period_grain

),

placed as (

    select
        *,
        row_number() over (
            partition by pairing_id, measure, period_grain order by period_start
        )::integer as position

    from figures

),

-- the figures this build writes (an incremental run: from each series' judge_from on) and
-- the positions of their windows: i − W … i − 1, or the first W + 1 but i for i <= W
judged as (

    select
        placed.*,
        case when placed.position > {{ outlier_window() }} then placed.position - {{ outlier_window() }} else 1 end
            as window_first,
        case
            when placed.position > {{ outlier_window() }} then placed.position - 1
            else least(series.figure_count, {{ outlier_window() }} + 1)
        end as window_last,
        series.values_by_period

    from placed
    inner join series
        on
            placed.pairing_id = series.pairing_id
            and placed.measure = series.measure
            and placed.period_grain = series.period_grain
    {%- if is_incremental() %}
    inner join {{ outlier_series_relation() }} as refreshed
        on
            placed.pairing_id = refreshed.pairing_id
            and placed.measure = refreshed.measure
            and placed.period_grain = refreshed.period_grain
            and placed.period_start >= refreshed.judge_from
    {%- endif %}

),

windows as (

    select
        judged.*,
        coalesce(others.history_periods, 0) as history_periods,
        others.sorted_values

    from judged
    cross join lateral (
        select
            count(*)::integer as history_periods,
            array_agg(window_values.value order by window_values.value) as sorted_values
        from unnest(
            judged.values_by_period[judged.window_first:judged.position - 1]
            || judged.values_by_period[judged.position + 1:judged.window_last]
        ) as window_values (value)
    ) as others

),

-- the median of the m others (the two middle ones, equal when m is odd; as exact_median),
-- then the median and the mean of their absolute deviations from it
medians as (

    select
        *,
        trim_scale(
            (sorted_values[(history_periods + 1) / 2] + sorted_values[history_periods / 2 + 1]) * 0.5
        ) as history_median

    from windows

),

history_stats as (

    select
        medians.*,
        trim_scale(
            (
                spread.sorted_deviations[(medians.history_periods + 1) / 2]
                + spread.sorted_deviations[medians.history_periods / 2 + 1]
            ) * 0.5
        ) as history_mad,
        spread.deviation_sum / nullif(medians.history_periods, 0) as history_mean_ad

    from medians
    cross join lateral (
        select
            array_agg(abs(deviations.value - medians.history_median) order by abs(deviations.value - medians.history_median))
                as sorted_deviations,
            sum(abs(deviations.value - medians.history_median)) as deviation_sum
        from unnest(medians.sorted_values) as deviations (value)
    ) as spread

),

scored as (

    select
        history_stats.reporting_unit_code,
        history_stats.pairing_id,
        history_stats.pairing_code,
        history_stats.period_code,
        history_stats.period_grain,
        history_stats.period_start,
        history_stats.report_period_code,
        history_stats.measure,
        history_stats.figure_value,
        history_stats.is_approximate,
        history_stats.history_periods,
        history_stats.history_median,
        history_stats.history_mad,
        trim_scale(round(history_stats.history_mean_ad, 6)) as history_mean_ad,
        round(
            case
                when history_stats.history_periods < {{ quality_integer('outlier_min_history') }}
                    then null
                when history_stats.history_mad > 0
                    then 0.6745 * (history_stats.figure_value - history_stats.history_median) / history_stats.history_mad
                when history_stats.history_mean_ad > 0
                    then (history_stats.figure_value - history_stats.history_median)
                    / (1.253314 * history_stats.history_mean_ad)
            end,
            4
        ) as modified_z,
        case
            when history_stats.figure_value > 0 and history_stats.history_median > 0
                then round(
                    greatest(
                        history_stats.figure_value / history_stats.history_median,
                        history_stats.history_median / history_stats.figure_value
                    ),
                    4
                )
        end as ratio_to_median

    from history_stats

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
