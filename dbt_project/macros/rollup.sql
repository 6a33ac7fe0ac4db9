{#- rpt_region_rollup, incremental by period (see the model and dbt_project/README.md).

    The roll-up's rows of a period key (period_grain, period_start) depend on the fact rows
    that count in that month / quarter / year, and on the region closure. What the facts
    hold is summarised per **slot** — (quarter_start, month_start), month_start empty for a
    quarterly income report, which has no month — by a fingerprint of the facts' lineage
    (`marts_lineage.<fact>__lineage`, kept exact by the facts' own hooks): how many lineage
    rows and the sum of a 64-bit hash of each (fact, partition, pairing, source submission,
    pairing version, fact rows). Any new month, correction (also one that deletes rows),
    re-attribution to another pairing version or project moving to another month changes
    the fingerprint of the slots it touches. The closure gets a fingerprint of its own (a
    register change rebuilds everything).

    Pre-hook (`refresh_rollup_periods`): the fingerprints now, into a temporary table; on an
    incremental run, the slots whose fingerprint differs from the one recorded after the
    last build (`rollup_lineage_relation()`, a few dozen rows) give the stale keys — the
    slot's month, its quarter and its year — which are deleted. The model then selects the
    rows of exactly those keys. Post-hook (`record_rollup_lineage`): the fingerprints the
    build started from become the record. They are computed before the model reads the
    facts, so a fact refreshed concurrently can only make the next build redo a period,
    never skip one. -#}

{% macro rollup_lineage_relation() -%}
    {{ lineage_schema() }}.rpt_region_rollup__lineage
{%- endmacro %}

{% macro rollup_fingerprints_relation() -%}
    pg_temp.rpt_region_rollup__fingerprints
{%- endmacro %}

{% macro rollup_fingerprints_sql() %}
    select
        quarter_start,
        month_start,
        count(*)::bigint as lineage_rows,
        coalesce(sum(hashtextextended(row(
            fact, reporting_unit_code, period_code, pairing_code, source_submission_id,
            pairing_submission_id, fact_rows
        )::text, 0)::numeric), 0) as fingerprint
    from (
        select 'activities' as fact, * from {{ lineage_relation('fct_activity_counts') }}
        union all
        select 'income_effects' as fact, * from {{ lineage_relation('fct_income_effects') }}
        union all
        select 'projects' as fact, * from {{ lineage_relation('fct_projects') }}
    ) as lineage
    group by quarter_start, month_start

    union all

    -- the region closure (quarter_start null): names, levels and ancestors of every unit
    select
        null::date as quarter_start,
        null::date as month_start,
        count(*)::bigint as lineage_rows,
        coalesce(sum(hashtextextended(row(
            tree, region_code, ancestor_id, ancestor_code, ancestor_name, ancestor_level, ancestor_level_name
        )::text, 0)::numeric), 0) as fingerprint
    from {{ ref('int_regions_flattened') }}
{% endmacro %}

{% macro refresh_rollup_periods() %}
    {%- for fact in ['fct_activity_counts', 'fct_income_effects', 'fct_projects'] %}
    {{ ensure_fact_lineage(fact) }}
    {%- endfor %}
    create table if not exists {{ rollup_lineage_relation() }} (
        quarter_start date,
        month_start date,
        lineage_rows bigint not null,
        fingerprint numeric not null
    );
    drop table if exists {{ rollup_fingerprints_relation() }};
    create temporary table {{ rollup_fingerprints_relation() }} on commit drop as
    {{ rollup_fingerprints_sql() }};
    drop table if exists {{ refresh_keys_relation() }};
    {%- if is_incremental() %}
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    with

    fingerprints as (
        select * from {{ rollup_fingerprints_relation() }}
    ),

    recorded as (
        select * from {{ rollup_lineage_relation() }}
    ),

    -- slots new, gone or changed since the last build (the closure: quarter_start null)
    stale_slots as (
        {{ changed_fingerprints('fingerprints', 'recorded', {'quarter_start': "'-infinity'", 'month_start': "'-infinity'"}) }}
    ),

    -- the closure changed, or nothing was recorded yet: every period
    rebuild as (
        select exists (select from stale_slots where quarter_start is null) as everything
    ),

    slots as (
        select quarter_start, month_start from stale_slots where quarter_start is not null
        union
        select quarter_start, month_start from fingerprints
        where quarter_start is not null and (select everything from rebuild)
    )

    select 'month' as period_grain, month_start as period_start from slots where month_start is not null
    union
    select 'quarter' as period_grain, quarter_start as period_start from slots
    union
    select 'year' as period_grain, date_trunc('year', quarter_start)::date as period_start from slots
    union
    select period_grain, period_start from {{ this }} where (select everything from rebuild);
    analyze {{ refresh_keys_relation() }};
    {{ record_refreshed_keys() }}
    delete from {{ this }} as target
    using {{ refresh_keys_relation() }} as stale
    where target.period_grain = stale.period_grain and target.period_start = stale.period_start;
    {%- else %}
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    select null::text as period_grain, null::date as period_start where false;
    {{ record_refreshed_keys() }}
    {%- endif %}
{% endmacro %}

{% macro record_rollup_lineage() %}
    delete from {{ rollup_lineage_relation() }};
    insert into {{ rollup_lineage_relation() }} (quarter_start, month_start, lineage_rows, fingerprint)
    select quarter_start, month_start, lineage_rows, fingerprint from {{ rollup_fingerprints_relation() }};
{% endmacro %}

{#- The keys of one grain being rebuilt, as an array (for `= any(...)`, which an index on
    the column serves; the model's incremental filters). -#}
{% macro rollup_stale_starts(grain) -%}
    array(select period_start from {{ refresh_keys_relation() }} where period_grain = '{{ grain }}')
{%- endmacro %}

{%- macro rollup_region_columns() -%}
    {{ return(['attribution', 'tree', 'region_id', 'region_code', 'region_name', 'region_level', 'level_name']) }}
{%- endmacro %}

{#- fact lines (one per fact row, every measure present or a typed null) rolled up on each
    of their units and every ancestor of it, grouped by region and `slot`. The lines are
    first added up per (reporting, urban, rural unit, slot) — sums and the rows behind each
    measure are additive — so the expansion to attributions and ancestors multiplies a
    pairing's month, not each of its activity types. -#}
{% macro rollup_lines(lines, slot, count_measures, decimal_measures) %}
    {%- set measures = count_measures + (decimal_measures.keys() | list) %}
    select
        attribution.attribution,
        ancestors.tree,
        ancestors.ancestor_id as region_id,
        ancestors.ancestor_code as region_code,
        ancestors.ancestor_name as region_name,
        ancestors.ancestor_level as region_level,
        ancestors.ancestor_level_name as level_name,
        unit_lines.{{ slot }},
        -- sum() over nulls only is null: no row of the group reported the measure
        {%- for measure in count_measures %}
            sum(unit_lines.{{ measure }})::bigint as {{ measure }},
        {%- endfor %}
        {%- for measure, data_type in decimal_measures.items() %}
            sum(unit_lines.{{ measure }})::{{ data_type }} as {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            sum(unit_lines.{{ measure }}_rows)::bigint as {{ measure }}_rows,
        {%- endfor %}
        bool_or(unit_lines.is_approximate) as is_approximate

    from (
        select
            reporting_unit_code,
            urban_unit_code,
            rural_unit_code,
            {{ slot }},
            {%- for measure in measures %}
                sum({{ measure }}) as {{ measure }},
                count({{ measure }}) as {{ measure }}_rows,
            {%- endfor %}
            bool_or(is_approximate) as is_approximate
        from {{ lines }}
        group by reporting_unit_code, urban_unit_code, rural_unit_code, {{ slot }}
    ) as unit_lines
    -- the same line once for each unit it may be rolled up on ...
    cross join
        lateral (
            values
            ('reporting_unit', unit_lines.reporting_unit_code),
            ('urban_unit', unit_lines.urban_unit_code),
            ('rural_unit', unit_lines.rural_unit_code)
        ) as attribution (attribution, unit_code)
    -- ... to the unit itself and every ancestor, in each tree that holds the unit
    inner join ancestors
        on attribution.unit_code = ancestors.region_code
    -- by position: ancestors.region_id / region_code are the descendant's, not the output's
    group by 1, 2, 3, 4, 5, 6, 7, 8
{% endmacro %}

{#- sums of rolled-up rows (month rows and quarterly reports) over a longer period -#}
{% macro rollup_sums(rows, period_expression, grain, count_measures, decimal_measures) %}
    {%- set measures = count_measures + (decimal_measures.keys() | list) %}
    {%- set region_columns = rollup_region_columns() %}
    select
        {{ region_columns | join(', ') }},
        '{{ grain }}' as period_grain,
        {{ period_expression }} as period_start,
        {%- for measure in count_measures %}
            sum({{ measure }})::bigint as {{ measure }},
        {%- endfor %}
        {%- for measure, data_type in decimal_measures.items() %}
            sum({{ measure }})::{{ data_type }} as {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            sum({{ measure }}_rows)::bigint as {{ measure }}_rows,
        {%- endfor %}
        bool_or(is_approximate) as is_approximate

    from {{ rows }}
    {%- if is_incremental() %}
    where {{ period_expression }} = any({{ rollup_stale_starts(grain) }})
    {%- endif %}
    group by {{ region_columns | join(', ') }}, {{ period_expression }}
{% endmacro %}

