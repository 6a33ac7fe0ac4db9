-- Rows each loaded file has in raw.* (the four tables together), for the row_reconciliation
-- check. raw.* are append-only and a file lands in one transaction, so a file's count is
-- final once it is seen: each build counts the files loaded since (their rows are at the end
-- of the tables: the BRIN indexes on submission_id find them) and keeps the others.
-- Anything else that changes raw.* — a row deleted or updated, a table truncated or
-- rewritten, the statistics reset — shows in PostgreSQL's per-table counters
-- (pg_stat_get_tuples_updated / _deleted, the relation's file node, the stats reset time),
-- recorded after each build (macros/quality_counts.sql): when they differ, every file is
-- counted again, so the check still sees a row gone missing.

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ refresh_raw_row_counts() }}",
        post_hook="{{ record_raw_tables_state() }}",
        indexes=[{'columns': ['submission_id'], 'unique': true}],
    )
}}

with

loaded as (

    select submission_id from {{ ref('stg_audit__submission_files') }}
    where submission_status = 'loaded'

),

to_count as (

    select loaded.submission_id from loaded
    {%- if is_incremental() %}
    where not exists (select from {{ this }} where {{ this }}.submission_id = loaded.submission_id)
    {%- endif %}

),

raw_rows as (

    {%- for kind in ['pairings', 'activities', 'projects', 'income_effects'] %}
    select submission_id from {{ ref('stg_raw__' ~ kind) }}
    {%- if is_incremental() %}
    -- the range for the BRIN index (new files are at the end of the table), the set as a
    -- hashed subplan (`= any(array(...))` would compare each row with every id)
    where
        submission_id between (select min(submission_id) from to_count) and (select max(submission_id) from to_count)
        and submission_id in (select submission_id from to_count)
    {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

raw_counts as (

    select
        submission_id,
        count(*) as raw_row_count

    from raw_rows
    group by submission_id

),

final as (

    select
        to_count.submission_id,
        coalesce(raw_counts.raw_row_count, 0)::bigint as raw_row_count

    from to_count
    left join raw_counts
        on to_count.submission_id = raw_counts.submission_id

)

select * from final
