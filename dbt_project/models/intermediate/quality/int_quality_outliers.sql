-- Check outliers (warning): one row per reporting unit × report period with figures that have
-- enough history to be judged (rpt_outliers, history_periods >= var outlier_min_history).
-- fail: a figure written as an exact number is an outlier; approximate: the only outliers are
-- approximate figures (100余, 约50 — reported, not an error); pass: none.
-- observed_value = the largest |modified z|; failing_rows = outlier figures; examples = the
-- outliers, largest |z| first.

with

outliers as (

    select * from {{ ref('rpt_outliers') }}
    where history_periods >= {{ quality_integer('outlier_min_history') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by reporting_unit_code, report_period_code
            order by is_outlier desc, abs(modified_z) desc nulls last, pairing_code, measure, period_code
        ) as outlier_rank

    from outliers

),

grouped as (

    select
        reporting_unit_code,
        report_period_code as period_code,
        count(*) as figures_checked,
        count(*) filter (where is_outlier) as outlier_figures,
        count(*) filter (where is_outlier and not is_approximate) as exact_outlier_figures,
        max(abs(modified_z)) as max_abs_z,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'pairing_code', pairing_code,
                    'measure', measure,
                    'period_code', period_code,
                    'value', value,
                    'history_median', history_median,
                    'modified_z', modified_z,
                    'direction', direction,
                    'is_approximate', is_approximate
                )
                order by outlier_rank
            ) filter (where is_outlier and outlier_rank <= 5),
            '[]'::jsonb
        ) as examples

    from ranked
    group by reporting_unit_code, report_period_code

),

final as (

    select
        'outliers'::text as check_name,
        'warning'::text as severity,
        reporting_unit_code,
        period_code,
        case
            when exact_outlier_figures > 0 then 'fail'
            when outlier_figures > 0 then 'approximate'
            else 'pass'
        end::text as outcome,
        max_abs_z::numeric as observed_value,
        outlier_figures::integer as failing_rows,
        case
            when exact_outlier_figures > 0 then format(
                '%s 个数值异常（共 %s 个，最大 |z| = %s）', outlier_figures, figures_checked, max_abs_z
            )
            when outlier_figures > 0 then format(
                '%s 个异常值均为约数（共 %s 个，最大 |z| = %s），请核实', outlier_figures, figures_checked, max_abs_z
            )
            else format('%s 个数值均无异常', figures_checked)
        end as detail_zh,
        case
            when exact_outlier_figures > 0 then format(
                '%s of %s figures are outliers (max |z| = %s)', outlier_figures, figures_checked, max_abs_z
            )
            when outlier_figures > 0 then format(
                '%s of %s figures are outliers, all of them approximate (max |z| = %s); please check',
                outlier_figures, figures_checked, max_abs_z
            )
            else format('no outlier among %s figures', figures_checked)
        end as detail_en,
        examples

    from grouped

)

select * from final
