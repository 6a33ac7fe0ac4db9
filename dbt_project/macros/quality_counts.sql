{#- int_quality_raw_row_counts: when to count every file again.

    The state of raw.* that append-only loading never changes: per table, the rows updated
    and deleted since the statistics were last reset, the relation's file node (a TRUNCATE,
    VACUUM FULL or CLUSTER gives a new one) and the database's stats reset time. Recorded by
    the post-hook after each build; the pre-hook compares it with the state now and, when
    anything differs (or nothing was recorded), deletes every count, so the build counts
    every loaded file again. A false alarm (an aborted update, a stats reset) only costs a
    full count. -#}

{% macro raw_tables_state_relation() -%}
    intermediate.int_quality_raw_row_counts__state
{%- endmacro %}

{% macro raw_tables_state_now_relation() -%}
    pg_temp.int_quality_raw_row_counts__state_now
{%- endmacro %}

{% macro refresh_raw_row_counts() %}
    create table if not exists {{ raw_tables_state_relation() }} (
        table_name text not null,
        tuples_updated bigint,
        tuples_deleted bigint,
        file_node oid,
        stats_reset timestamptz
    );
    drop table if exists {{ raw_tables_state_now_relation() }};
    create temporary table {{ raw_tables_state_now_relation() }} on commit drop as
    select
        tables.relname::text as table_name,
        pg_stat_get_tuples_updated(tables.oid) as tuples_updated,
        pg_stat_get_tuples_deleted(tables.oid) as tuples_deleted,
        pg_relation_filenode(tables.oid) as file_node,
        pg_stat_get_db_stat_reset_time(
            (select oid from pg_database where datname = current_database())
        ) as stats_reset
    from pg_class as tables
    inner join pg_namespace as schemas
        on tables.relnamespace = schemas.oid
    where schemas.nspname = 'raw' and tables.relname in ('pairings', 'activities', 'projects', 'income_effects');
    {%- if is_incremental() %}
    delete from {{ this }}
    where exists (
        select
        from {{ raw_tables_state_now_relation() }} as now
        full join {{ raw_tables_state_relation() }} as recorded
            on now.table_name = recorded.table_name
        where
            now.table_name is null or recorded.table_name is null
            or (now.tuples_updated, now.tuples_deleted, now.file_node, now.stats_reset)
            is distinct from (recorded.tuples_updated, recorded.tuples_deleted, recorded.file_node, recorded.stats_reset)
    );
    {%- endif %}
{% endmacro %}

{% macro record_raw_tables_state() %}
    delete from {{ raw_tables_state_relation() }};
    insert into {{ raw_tables_state_relation() }}
    select * from {{ raw_tables_state_now_relation() }};
{% endmacro %}
