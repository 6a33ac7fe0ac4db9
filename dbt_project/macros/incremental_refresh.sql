{#- Incremental facts: replace whole partitions (keys) whose inputs changed.

    A fact table is partitioned by keys of its inputs — (reporting_unit_code, period_code)
    for activities and income effects, reporting_unit_code for projects. On an incremental
    run the model's pre-hook calls `refresh_partitions(...)`, which
      1. computes the stale keys once, into a temporary table (`refresh_keys_relation()`),
         by comparing what the table holds with the current submissions (see the
         `stale_*_keys` macros: no watermark, so a file that commits late is not missed);
      2. deletes the table's rows for those keys;
    then the model's own SQL selects the new rows for exactly those keys (it joins the
    temporary table when `is_incremental()`), and dbt appends them. Hook, select and insert
    run in one transaction: readers see the old rows or the new ones, never neither.
    A key whose new version holds no rows (a correction that empties a month) is deleted and
    stays empty, which dbt's own delete+insert (keyed on the new rows) would not do.

    What the table holds is read from its **lineage** (`lineage_relation()`,
    `marts_lineage.<fact>__lineage`), not from the table itself: one row per partition ×
    pairing × month the rows fall in, with the submission and pairing version they came
    from and how many fact rows that is (`fact_lineage_sql`). The model's post-hook
    (`record_fact_lineage`) rewrites the lineage of the partitions it just refreshed (all of
    it on a first build or a full refresh), in the same transaction as the rows — so the
    lineage is always exactly what the table holds. It is ~12 times smaller than
    fct_activity_counts (one row per pairing × month instead of per pairing × month × type),
    so comparing it with the current submissions costs little as history grows, and
    rpt_region_rollup, rpt_outliers and the fact_integrity check read it to see what changed.
    A lineage table that is missing or empty (a warehouse built before it existed) makes the
    next build rebuild the fact in place. -#}

{% macro refresh_keys_relation() -%}
    pg_temp.{{ this.identifier }}__refresh_keys
{%- endmacro %}

{#- true on an incremental run, false on a first build or a full refresh (read by post-hooks,
    whose is_incremental() may already see the table the first build created). -#}
{% macro refresh_mode_relation() -%}
    pg_temp.{{ this.identifier }}__refresh_mode
{%- endmacro %}

{#- Where dbt's incremental models keep what they were built from: `<marts schema>_lineage`
    (marts_lineage for the published tables, marts_build_lineage for the ones being built;
    bi_reader never reads either). A lineage belongs to one physical table: publishing a
    table (ingestion/publish.py) moves its lineage with it. -#}
{% macro lineage_schema() -%}
    {{ var('marts_schema', 'marts') }}_lineage
{%- endmacro %}

{% macro lineage_relation(model_name=none) -%}
    {{ lineage_schema() }}.{{ model_name or this.identifier }}__lineage
{%- endmacro %}

{#- on-run-start: the lineage schemas, created once before the models run (two models creating
    the same schema at once collide, IF NOT EXISTS or not). Lineages kept in `intermediate` by
    builds before write-audit-publish belong to the published tables: moved to marts_lineage. -#}
{% macro prepare_lineage_schemas() %}
    {%- if execute %}
    create schema if not exists marts_lineage;
    create schema if not exists {{ lineage_schema() }};
    do $migrate_lineage$
    declare
        t text;
    begin
        for t in
            select c.relname from pg_catalog.pg_class as c
            join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
            where n.nspname = 'intermediate' and c.relkind = 'r' and c.relname like '%\_\_lineage'
        loop
            if to_regclass(format('marts_lineage.%I', t)) is null then
                execute format('alter table intermediate.%I set schema marts_lineage', t);
            else
                execute format('drop table intermediate.%I', t);
            end if;
        end loop;
    end
    $migrate_lineage$;
    {%- endif %}
{% endmacro %}

{% macro ensure_fact_lineage(model_name=none) %}
    create schema if not exists {{ lineage_schema() }};
    create table if not exists {{ lineage_relation(model_name) }} (
        reporting_unit_code text not null,
        period_code text,
        period_start date,
        pairing_code text,
        source_submission_id bigint,
        pairing_submission_id bigint,
        month_start date,
        quarter_start date,
        fact_rows bigint not null
    );
    create index if not exists {{ model_name or this.identifier }}__lineage_key_idx
        on {{ lineage_relation(model_name) }} (reporting_unit_code, period_code);
{% endmacro %}

{#- The lineage rows of a fact table, from the table itself, for the rows matching `where`.
    Grain: partition × pairing × month (the month the rows count in, rpt_region_rollup's
    slot: the activity month; an income report's month, or none for a quarterly report; the
    month a project started). -#}
{% macro fact_lineage_sql(where='true') %}
    {%- if this.identifier == 'fct_activity_counts' %}
    select
        reporting_unit_code, period_code, period_start, pairing_code, source_submission_id,
        pairing_submission_id, activity_month as month_start,
        date_trunc('quarter', activity_month)::date as quarter_start, count(*) as fact_rows
    from {{ this }}
    where {{ where }}
    group by 1, 2, 3, 4, 5, 6, 7
    {%- elif this.identifier == 'fct_income_effects' %}
    select
        reporting_unit_code, period_code, period_start, pairing_code, source_submission_id,
        pairing_submission_id, case when period_grain = 'month' then period_start end as month_start,
        date_trunc('quarter', period_start)::date as quarter_start, count(*) as fact_rows
    from {{ this }}
    where {{ where }}
    group by 1, 2, 3, 4, 5, 6, 7, 8
    {%- elif this.identifier == 'fct_projects' %}
    select
        reporting_unit_code, latest_period_code as period_code, latest_period_start as period_start,
        pairing_code, source_submission_id, pairing_submission_id,
        date_trunc('month', project_start_date)::date as month_start,
        date_trunc('quarter', project_start_date)::date as quarter_start, count(*) as fact_rows
    from {{ this }}
    where {{ where }}
    group by 1, 2, 3, 4, 5, 6, 7, 8
    {%- else %}
    {{ exceptions.raise_compiler_error('fact_lineage_sql: no lineage defined for ' ~ this.identifier) }}
    {%- endif %}
{% endmacro %}

{% macro refresh_partitions(key_columns, stale_keys_sql) %}
    {{ ensure_fact_lineage() }}
    drop table if exists {{ refresh_keys_relation() }};
    drop table if exists {{ refresh_mode_relation() }};
    {%- if is_incremental() %}
    -- a lineage that is empty while the table is not (built before lineages existed): rebuild
    -- in place (every current submission is then "not held", so every key is refreshed)
    delete from {{ this }} where not exists (select from {{ lineage_relation() }});
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    {{ stale_keys_sql }};
    analyze {{ refresh_keys_relation() }};
    {{ record_refreshed_keys() }}
    delete from {{ this }} as target
    using {{ refresh_keys_relation() }} as stale
    where
        {%- for column in key_columns %}
        target.{{ column }} = stale.{{ column }}{% if not loop.last %} and{% endif %}
        {%- endfor %};
    create temporary table {{ refresh_mode_relation() }} on commit drop as select false as full_refresh;
    {%- else %}
    create temporary table {{ refresh_keys_relation() }} on commit drop as
    select {{ key_columns | join(', ') }} from {{ lineage_relation() }} where false;
    create temporary table {{ refresh_mode_relation() }} on commit drop as select true as full_refresh;
    {{ record_refreshed_keys() }}
    {%- endif %}
{% endmacro %}

{#- Post-hook of an incremental fact: the lineage of the partitions just refreshed (or all of
    it after a first build / full refresh), in the transaction that wrote the rows. -#}
{% macro record_fact_lineage(key_columns) %}
    do $record_lineage$
    begin
        if (select full_refresh from {{ refresh_mode_relation() }}) then
            delete from {{ lineage_relation() }};
            insert into {{ lineage_relation() }} {{ fact_lineage_sql() }};
        else
            delete from {{ lineage_relation() }} as lineage
            using {{ refresh_keys_relation() }} as stale
            where
                {%- for column in key_columns %}
                lineage.{{ column }} = stale.{{ column }}{% if not loop.last %} and{% endif %}
                {%- endfor %};
            insert into {{ lineage_relation() }}
            {{ fact_lineage_sql(in_refresh_keys(key_columns)) }};
        end if;
    end
    $record_lineage$;
    analyze {{ lineage_relation() }};
{% endmacro %}

{#- SQL condition for the model's incremental select: the row belongs to a stale key. -#}
{% macro in_refresh_keys(key_columns, alias=none) -%}
    ({% for column in key_columns %}{% if alias %}{{ alias }}.{% endif %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor %})
    in (select {{ key_columns | join(', ') }} from {{ refresh_keys_relation() }})
{%- endmacro %}

{#- Stale (reporting_unit_code, period_code) keys of a fact fed by one record kind:
    - a current submission of that kind whose rows the table does not hold (new or correction;
      also one that holds no rows at all — re-deleting an empty key is cheap);
    - rows the table holds from a submission that is no longer current;
    - rows attributed to a pairing version other than the one now in effect.
    "Held" is the table's lineage (one row per partition × pairing × month). -#}
{% macro stale_period_keys(record_kind) %}
    with

    current_submissions as (
        select reporting_unit_code, period_code, submission_id
        from {{ ref('int_submission_kinds_versioned') }}
        where record_kind = '{{ record_kind }}' and is_current
    ),

    held as (
        select distinct reporting_unit_code, period_code, period_start, pairing_code,
            source_submission_id, pairing_submission_id
        from {{ lineage_relation() }}
    ),

    held_sources as (
        select distinct reporting_unit_code, period_code, source_submission_id from held
    )

    select current_submissions.reporting_unit_code, current_submissions.period_code
    from current_submissions
    where not exists (
        select from held_sources
        where held_sources.reporting_unit_code = current_submissions.reporting_unit_code
            and held_sources.period_code = current_submissions.period_code
            and held_sources.source_submission_id = current_submissions.submission_id
    )

    union

    select held_sources.reporting_unit_code, held_sources.period_code
    from held_sources
    where not exists (
        select from current_submissions
        where current_submissions.submission_id = held_sources.source_submission_id
            and current_submissions.reporting_unit_code = held_sources.reporting_unit_code
            and current_submissions.period_code = held_sources.period_code
    )

    union

    {{ stale_pairing_attribution('held', ['reporting_unit_code', 'period_code']) }}
{% endmacro %}

{#- Stale reporting units of fct_projects (a project's latest state may come from any period):
    - a current projects submission newer than every row the unit holds (new reports,
      corrections);
    - rows from a submission that is no longer current;
    - rows attributed to a pairing version other than the one now in effect.
    A correction of an old period that changes no project's latest state leaves the unit
    stale, so it is recomputed (a few rows) on each run until a newer report arrives. -#}
{% macro stale_unit_keys(record_kind) %}
    with

    current_submissions as (
        select reporting_unit_code, submission_id
        from {{ ref('int_submission_kinds_versioned') }}
        where record_kind = '{{ record_kind }}' and is_current
    ),

    held as (
        select distinct reporting_unit_code, period_start, pairing_code,
            source_submission_id, pairing_submission_id
        from {{ lineage_relation() }}
    ),

    held_max as (
        select reporting_unit_code, max(source_submission_id) as max_submission_id
        from held
        group by reporting_unit_code
    )

    select current_submissions.reporting_unit_code
    from current_submissions
    left join held_max
        on current_submissions.reporting_unit_code = held_max.reporting_unit_code
    where current_submissions.submission_id > coalesce(held_max.max_submission_id, 0)

    union

    select held.reporting_unit_code
    from held
    where not exists (
        select from {{ ref('int_submission_kinds_versioned') }} as versions
        where versions.submission_id = held.source_submission_id
            and versions.record_kind = '{{ record_kind }}'
            and versions.is_current
    )

    union

    {{ stale_pairing_attribution('held', ['reporting_unit_code']) }}
{% endmacro %}

{#- Keys of held rows whose pairing attribution (urban/rural unit) is no longer the version
    in effect at the row's period start (a new or corrected pairing report). -#}
{% macro stale_pairing_attribution(held, key_columns) %}
    select {% for column in key_columns %}{{ held }}.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
    from {{ held }}
    left join {{ ref('int_pairings_historised') }} as versions
        on {{ held }}.reporting_unit_code = versions.reporting_unit_code
        and {{ held }}.pairing_code = versions.pairing_code
        and {{ held }}.period_start >= versions.effective_from
        and {{ held }}.period_start < versions.effective_to
    where versions.source_submission_id is distinct from {{ held }}.pairing_submission_id
{% endmacro %}

{#- SQL condition for the model's incremental select: the row comes from a current submission
    of a stale key. Same rows as `in_refresh_keys`, but a plain filter on submission_id that
    PostgreSQL applies while scanning raw.* (before any join): the range of those ids, which
    a summarized BRIN index on submission_id serves (new files are at the end of the table),
    and the ids themselves as a hashed subplan (kept one by `is true`). (`submission_id = any(array(...))` serves
    the BRIN index too, but its recheck compares every row of the matching ranges with
    every id: with a national month, 2,900 ids × 850,000 rows.) -#}
{% macro in_refresh_submissions(record_kind, key_columns) -%}
    {%- set ids -%}
        select versions.submission_id
        from {{ ref('int_submission_kinds_versioned') }} as versions
        inner join {{ refresh_keys_relation() }} as stale
            on
            {%- for column in key_columns %}
                versions.{{ column }} = stale.{{ column }}{% if not loop.last %} and{% endif %}
            {%- endfor %}
        where versions.record_kind = '{{ record_kind }}' and versions.is_current
    {%- endset -%}
    submission_id between (select min(submission_id) from ({{ ids }}) as ids)
        and (select max(submission_id) from ({{ ids }}) as ids)
    {# `is true` keeps the IN a hashed subplan: as a top-level IN, PostgreSQL turned it into a
       semi join, and with the BRIN range's row count unknown at planning time it chose a
       nested loop comparing each new raw row with every id (one national month on a year of
       history: > 6 min for fct_activity_counts; as a hashed subplan, seconds) #}
    and (submission_id in ({{ ids }})) is true
{%- endmacro %}

{#- The keys whose fingerprint (or lineage row count) differs between `now` and `recorded`:
    new, gone or changed since the last build. `keys` maps each key column to the sentinel
    that stands for its null (the whole-model row has null keys), so the full join can hash. -#}
{% macro changed_fingerprints(now, recorded, keys) %}
    select
        {%- for column in keys %}
        coalesce(now.{{ column }}, recorded.{{ column }}) as {{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ now }} as now
    full join {{ recorded }} as recorded
        on
        {%- for column, sentinel in keys.items() %}
            coalesce(now.{{ column }}, {{ sentinel }}) = coalesce(recorded.{{ column }}, {{ sentinel }})
            {%- if not loop.last %} and{% endif %}
        {%- endfor %}
    where
        now.fingerprint is distinct from recorded.fingerprint
        or now.lineage_rows is distinct from recorded.lineage_rows
{% endmacro %}

{#- Write-audit-publish keeps the build copy in step (ingestion/build_copy.py): after the
    publication the copy's rows of the keys this run refreshed are replaced by the published
    ones. Called by the pre-hooks once the refresh keys are known, in the model's transaction:
    the keys, as `<lineage schema>.<model>__refreshed`, on an incremental run; none on a first
    build or a full refresh (then the copy is replaced whole). -#}
{% macro record_refreshed_keys() %}
    drop table if exists {{ lineage_schema() }}.{{ this.identifier }}__refreshed;
    {%- if is_incremental() %}
    create table {{ lineage_schema() }}.{{ this.identifier }}__refreshed as
    select * from {{ refresh_keys_relation() }};
    {{ stamp_refreshed_keys(lineage_schema() ~ '.' ~ this.identifier ~ '__refreshed') }};
    analyze {{ lineage_schema() }}.{{ this.identifier }}__refreshed;
    {%- endif %}
{% endmacro %}
