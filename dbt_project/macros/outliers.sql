{#- rpt_outliers: what it judges, and how an incremental build finds the few verdicts a new
    month changes.

    A series is one pairing × measure × grain, its figures in period order (positions 1 … n).
    The figure at position i is judged against its **window** of at most W = var
    `outlier_window` other figures of the series:
      - i > W: its W predecessors, positions i − W … i − 1;
      - i <= W: the others of the series' first W + 1 (all the others while n <= W + 1).
    So a figure's verdict is final once it has W predecessors, or the series W + 1 figures:
    a new month adds verdicts and changes none of the older ones (past the series' first
    W + 1), and a correction of position p changes positions p … p + W only.

    Incremental by pairing × date: the pre-hook (`outlier_refresh`) fingerprints the facts'
    lineage per pairing × figure date and compares it with the fingerprints recorded after
    the last build; for each pairing that changed, `changed_from` is its earliest changed
    date. A series of such a pairing is judged again from `changed_from` on, or from its
    start when fewer than W + 1 of its figures lie before it (`judge_from`); exactly those
    rows are deleted, and the model selects them again. It reads the figures from
    `changed_from` on from the facts (their indexes on the activity month and the period
    start), and the W + 1 before it from the table itself — their values did not change —
    so a new month costs its own figures, not the history. A change of the outlier vars
    (the fingerprint row with a null pairing), or nothing recorded, judges everything again.
    A correction of an old month reads the facts from that month on. -#}

{% macro outlier_window() -%}
    {%- set w = var('outlier_window') | int -%}
    {%- if w < 1 -%}
        {{ exceptions.raise_compiler_error("var outlier_window must be a whole number of periods >= 1, got '" ~ var('outlier_window') ~ "'") }}
    {%- endif -%}
    {{ w }}
{%- endmacro %}

{#- Fingerprint per pairing × figure date (the activity month or the report period's start a
    figure counts in) from the facts' lineage: partition, month, source submission, row count
    — not the pairing version, which no figure depends on; and one row (null pairing and
    date) for the vars the verdicts use. -#}
{% macro outlier_fingerprints_sql() %}
    select
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,
        coalesce(month_start, period_start) as figure_date,
        count(*)::bigint as lineage_rows,
        coalesce(sum(hashtextextended(row(
            fact, period_code, period_start, month_start, source_submission_id, fact_rows
        )::text, 0)::numeric), 0) as fingerprint
    from (
        select 'activities' as fact, * from {{ lineage_relation('fct_activity_counts') }}
        union all
        select 'income_effects' as fact, * from {{ lineage_relation('fct_income_effects') }}
    ) as lineage
    group by 1, 2

    union all

    select
        null::text as pairing_id,
        null::date as figure_date,
        0::bigint as lineage_rows,
        hashtextextended(
            '{{ quality_number("outlier_z_threshold") }}|{{ quality_integer("outlier_min_history") }}|{{ quality_number("outlier_min_ratio") }}|{{ outlier_window() }}',
            0
        )::numeric as fingerprint
{% endmacro %}

{% macro outlier_figures_relation() -%}
    pg_temp.{{ this.identifier }}__figures
{%- endmacro %}

{% macro outlier_series_relation() -%}
    pg_temp.{{ this.identifier }}__series
{%- endmacro %}

{% macro outlier_fingerprints_relation() -%}
    pg_temp.{{ this.identifier }}__fingerprints
{%- endmacro %}

{% macro outlier_refreshed_relation() -%}
    {{ lineage_schema() }}.{{ this.identifier }}__refreshed
{%- endmacro %}

{#- The figures: participants per pairing × activity month (fct_activity_counts), the four
    income measures per pairing × report period (fct_income_effects; a measure left empty —
    not reported — is no figure). On an incremental run only those from each changed
    pairing's `changed_from` on (the fact rows are joined with the refresh keys). -#}
{% macro outlier_new_figures_sql(incremental) %}
    {%- set stale = refresh_keys_relation() %}
    select
        activities.reporting_unit_code,
        activities.pairing_id,
        activities.pairing_code,
        activities.month_code as period_code,
        'month' as period_grain,
        activities.activity_month as period_start,
        -- the report the month came in (one per month unless a unit mixes grains)
        max(activities.period_code) as report_period_code,
        'participants' as measure,
        sum(activities.participants)::numeric as figure_value,
        bool_or(activities.is_approximate) as is_approximate
    from {{ ref('fct_activity_counts') }} as activities
    {%- if incremental %}
    inner join {{ stale }} as stale
        on activities.pairing_id = stale.pairing_id and activities.activity_month >= stale.changed_from
    -- the index on the activity month: only the months some pairing changed in
    where activities.activity_month >= (select min(changed_from) from {{ stale }})
    {%- endif %}
    group by
        activities.reporting_unit_code, activities.pairing_id, activities.pairing_code,
        activities.month_code, activities.activity_month

    union all

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
    from {{ ref('fct_income_effects') }} as income_effects
    {%- if incremental %}
    inner join {{ stale }} as stale
        on income_effects.pairing_id = stale.pairing_id and income_effects.period_start >= stale.changed_from
    {%- endif %}
    cross join lateral (
        values
        ('collective_income_increase_yuan', income_effects.collective_income_increase_yuan::numeric),
        ('villager_income_increase_yuan', income_effects.villager_income_increase_yuan::numeric),
        ('produce_sold_tonnes', income_effects.produce_sold_tonnes::numeric),
        ('produce_sales_yuan', income_effects.produce_sales_yuan::numeric)
    ) as measures (measure, figure_value)
    where
        measures.figure_value is not null
        {%- if incremental %}
        and income_effects.period_start >= (select min(changed_from) from {{ stale }})
        {%- endif %}
{% endmacro %}

{#- Pre-hook of rpt_outliers: on an incremental run, the figures the model reads
    (`outlier_figures_relation()`: the changed pairings' new figures and the W + 1 before
    them; a first build or a full refresh reads all from the facts), and per series of
    a changed pairing the first period judged again (`outlier_series_relation()`:
    judge_from). On an incremental run the rows judged again are deleted, and the ids of the
    rows deleted or about to be written are kept for the build copy
    (`outlier_refreshed_relation()`; none after a first build or a full refresh). -#}
{% macro outlier_refresh() %}
    create schema if not exists {{ lineage_schema() }};
    -- fingerprints recorded per pairing only (before the history window): judge all again
    do $outlier_shape$
    begin
        if to_regclass('{{ lineage_relation() }}') is not null and not exists (
            select from pg_catalog.pg_attribute
            where attrelid = to_regclass('{{ lineage_relation() }}') and attname = 'figure_date' and not attisdropped
        ) then
            drop table {{ lineage_relation() }};
        end if;
    end
    $outlier_shape$;
    drop table if exists {{ outlier_fingerprints_relation() }};
    create temporary table {{ outlier_fingerprints_relation() }} on commit drop as
    {{ outlier_fingerprints_sql() }};
    create table if not exists {{ lineage_relation() }} as
    select * from {{ outlier_fingerprints_relation() }} where false;
    drop table if exists {{ refresh_keys_relation() }};
    drop table if exists {{ refresh_mode_relation() }};
    drop table if exists {{ outlier_figures_relation() }};
    drop table if exists {{ outlier_series_relation() }};
    drop table if exists {{ outlier_refreshed_relation() }};
    {%- if is_incremental() %}
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    with

    changed as (
        {{ changed_fingerprints(outlier_fingerprints_relation(), lineage_relation(),
                                {'pairing_id': "''", 'figure_date': "'-infinity'"}) }}
    ),

    rebuild as (
        select exists (select from changed where pairing_id is null) as everything
    )

    select pairing_id, min(figure_date) as changed_from
    from changed
    where pairing_id is not null and not (select everything from rebuild)
    group by pairing_id
    union all
    select pairing_id, '-infinity'::date as changed_from
    from (
        select pairing_id from {{ outlier_fingerprints_relation() }} where pairing_id is not null
        union
        select pairing_id from {{ this }}
    ) as every_pairing
    where (select everything from rebuild);
    analyze {{ refresh_keys_relation() }};
    create temporary table {{ refresh_mode_relation() }} on commit drop as select false as full_refresh;

    create temporary table {{ outlier_figures_relation() }} on commit drop as
    {{ outlier_new_figures_sql(true) }}
    union all
    -- the W + 1 figures before changed_from of each series: unchanged, read from the table
    select
        reporting_unit_code, pairing_id, pairing_code, period_code, period_grain, period_start,
        report_period_code, measure, figure_value, is_approximate
    from (
        select
            target.*,
            target.value as figure_value,
            row_number() over (
                partition by target.pairing_id, target.measure, target.period_grain
                order by target.period_start desc
            ) as back
        from {{ this }} as target
        inner join {{ refresh_keys_relation() }} as stale
            on target.pairing_id = stale.pairing_id and target.period_start < stale.changed_from
    ) as before_change
    where back <= {{ outlier_window() }} + 1;
    analyze {{ outlier_figures_relation() }};

    -- fewer than W + 1 figures before the change: the series' first verdicts change too,
    -- so it is judged again from its start (all its figures are at hand: at most W before)
    create temporary table {{ outlier_series_relation() }} on commit drop as
    select
        figures.pairing_id,
        figures.measure,
        figures.period_grain,
        case
            when count(*) filter (where figures.period_start < stale.changed_from) <= {{ outlier_window() }}
                then '-infinity'::date
            else stale.changed_from
        end as judge_from
    from {{ outlier_figures_relation() }} as figures
    inner join {{ refresh_keys_relation() }} as stale on figures.pairing_id = stale.pairing_id
    group by figures.pairing_id, figures.measure, figures.period_grain, stale.changed_from;
    analyze {{ outlier_series_relation() }};

    -- the rows judged again (deleted here) and the rows about to be written
    create table {{ outlier_refreshed_relation() }} as
    select target.outlier_check_id
    from {{ this }} as target
    inner join {{ refresh_keys_relation() }} as stale
        on target.pairing_id = stale.pairing_id and target.period_start >= stale.changed_from
    union
    select target.outlier_check_id
    from {{ this }} as target
    inner join {{ outlier_series_relation() }} as series
        on
            target.pairing_id = series.pairing_id
            and target.measure = series.measure
            and target.period_grain = series.period_grain
            and series.judge_from = '-infinity'
    union
    select {{ surrogate_key(['figures.reporting_unit_code', 'figures.pairing_code', 'figures.period_code', 'figures.measure']) }}
    from {{ outlier_figures_relation() }} as figures
    inner join {{ outlier_series_relation() }} as series
        on
            figures.pairing_id = series.pairing_id
            and figures.measure = series.measure
            and figures.period_grain = series.period_grain
    where figures.period_start >= series.judge_from;
    {{ stamp_refreshed_keys(outlier_refreshed_relation()) }};
    analyze {{ outlier_refreshed_relation() }};
    -- most rows judged again: empty the table at once (keeping the others) instead of
    -- deleting and re-indexing it row by row
    do $outlier_delete$
    begin
        if 2 * (select count(*) from {{ outlier_refreshed_relation() }}) >= (select count(*) from {{ this }}) then
            -- an anti join (NOT IN over a large set is not hashed: quadratic)
            create temporary table {{ this.identifier }}__kept on commit drop as
            select * from {{ this }} as target
            where not exists (
                select from {{ outlier_refreshed_relation() }} as refreshed
                where refreshed.outlier_check_id = target.outlier_check_id
            );
            truncate {{ this }};
            insert into {{ this }} select * from pg_temp.{{ this.identifier }}__kept;
        else
            delete from {{ this }}
            where outlier_check_id in (select outlier_check_id from {{ outlier_refreshed_relation() }});
        end if;
    end
    $outlier_delete$;
    {%- else %}
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    select null::text as pairing_id, null::date as changed_from where false;
    create temporary table {{ refresh_mode_relation() }} on commit drop as select true as full_refresh;
    create temporary table {{ outlier_series_relation() }} on commit drop as
    select null::text as pairing_id, null::text as measure, null::text as period_grain, null::date as judge_from
    where false;
    {%- endif %}
{% endmacro %}

{#- Post-hook: the fingerprints the build started from — of the pairings it judged again, or
    all of them after a first build or a full refresh. -#}
{% macro record_outlier_fingerprints() %}
    do $record_outliers$
    begin
        if (select full_refresh from {{ refresh_mode_relation() }}) then
            delete from {{ lineage_relation() }};
            insert into {{ lineage_relation() }} select * from {{ outlier_fingerprints_relation() }};
        else
            delete from {{ lineage_relation() }}
            where pairing_id is null or pairing_id in (select pairing_id from {{ refresh_keys_relation() }});
            insert into {{ lineage_relation() }}
            select * from {{ outlier_fingerprints_relation() }}
            where pairing_id is null or pairing_id in (select pairing_id from {{ refresh_keys_relation() }});
        end if;
    end
    $record_outliers$;
    analyze {{ lineage_relation() }};
{% endmacro %}
