-- Check freshness (warning, whole warehouse): how many days before var quality_as_of the
-- newest raw row (any of raw.*) was loaded, against var freshness_max_days. Fails when
-- older, or when raw holds no row at all. observed_value = age in days (0 when rows were
-- loaded after quality_as_of, e.g. when re-judging a past day); examples = each raw table's
-- newest row, the stalest first.
--
-- The newest row without reading all of raw.*: a row of the latest loaded file of each kind
-- (found through the BRIN index on submission_id) gives a lower bound of max(loaded_at); the
-- rows loaded at or after it are found through the BRIN index on loaded_at (ingestion/
-- schema.sql) — a few page ranges at the end of the table. The bound is read when the model
-- runs, so the planner sees a constant; max() over the rows at or after a row's own
-- loaded_at is exactly the table's max. No bound (no loaded file, or none of its rows left):
-- the whole table is read. A table (one row), rebuilt each run with the bound of that run.

{{ config(materialized='table') }}

{%- set kinds = ['pairings', 'activities', 'projects', 'income_effects'] %}
{%- set bounds = {} %}
{%- if execute %}
    {%- for kind in kinds %}
        {%- set bound_sql %}
            select (
                select loaded_at
                from {{ source('raw', kind) }}
                where submission_id = (
                    select max(submission_id) from {{ source('audit', 'submission_files') }}
                    where status = 'loaded' and '{{ kind }}' = any(record_kinds)
                )
                limit 1
            )::text
        {%- endset %}
        {%- set bound = run_query(bound_sql).columns[0].values()[0] %}
        {%- if bound is not none %}
            {%- do bounds.update({kind: bound}) %}
        {%- endif %}
    {%- endfor %}
{%- endif %}

with

as_of as (

    select {{ quality_as_of() }} as quality_as_of

),

newest_by_table as (

    {%- for kind in kinds %}
    select
        '{{ kind }}' as raw_table,
        max(loaded_at) as newest_loaded_at
    from {{ ref('stg_raw__' ~ kind) }}
    {%- if kind in bounds %}
    where loaded_at >= '{{ bounds[kind] }}'::timestamptz
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

aged as (

    select
        newest_by_table.*,
        -- loaded after quality_as_of (re-judging a past day) counts as fresh: 0 days
        greatest(as_of.quality_as_of - (newest_by_table.newest_loaded_at at time zone 'Asia/Shanghai')::date, 0)
            as age_days

    from newest_by_table
    cross join as_of

),

overall as (

    select
        as_of.quality_as_of,
        max(aged.newest_loaded_at) as newest_loaded_at,
        -- the newest row of any table (an empty table has no age: greatest() skips nulls)
        min(aged.age_days) filter (where aged.newest_loaded_at is not null) as age_days,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'table', 'raw.' || aged.raw_table,
                    'newest_loaded_at', {{ shanghai_time('aged.newest_loaded_at') }},
                    'age_days', case when aged.newest_loaded_at is not null then aged.age_days end
                )
                order by aged.newest_loaded_at nulls first, aged.raw_table
            ),
            '[]'::jsonb
        ) as examples

    from as_of
    cross join aged
    group by as_of.quality_as_of

),

final as (

    select
        'freshness'::text as check_name,
        'warning'::text as severity,
        null::text as reporting_unit_code,
        null::text as period_code,
        case
            when age_days is null or age_days > {{ quality_integer('freshness_max_days') }} then 'fail'
            else 'pass'
        end::text as outcome,
        age_days::numeric as observed_value,
        (age_days is null or age_days > {{ quality_integer('freshness_max_days') }})::integer as failing_rows,
        case
            when age_days is null then '原始表中没有任何数据'
            else format(
                '最新数据载入于 %s，距 %s 为 %s 天（上限 %s 天）',
                {{ iso_date("(newest_loaded_at at time zone 'Asia/Shanghai')") }}, {{ iso_date('quality_as_of') }},
                age_days, {{ quality_integer('freshness_max_days') }}
            )
        end as detail_zh,
        case
            when age_days is null then 'raw holds no row at all'
            else format(
                'newest raw row loaded %s, %s days before %s (limit %s days)',
                {{ iso_date("(newest_loaded_at at time zone 'Asia/Shanghai')") }}, age_days,
                {{ iso_date('quality_as_of') }}, {{ quality_integer('freshness_max_days') }}
            )
        end as detail_en,
        examples

    from overall

)

select * from final
