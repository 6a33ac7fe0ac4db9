{#- Data tests of an incremental mart read only the rows this build wrote.

    dbt wraps the model a generic test reads in `get_where_subquery` (the test's `where`
    config). This override adds, on an incremental build, the rows of the keys the model
    refreshed in this same dbt invocation: the keys its pre-hook recorded for the build copy
    (`record_refreshed_keys`, `outlier_refresh`: `<marts schema>_lineage.<model>__refreshed`,
    stamped with the invocation id). The other rows were tested when they were written and
    have not changed since; the keys the tests check whole-table — a fact's primary key, its
    not-null columns — are constraints PostgreSQL enforces on every row, and each
    combination tested unique includes the refresh key, so a duplicate lies inside the
    refreshed rows. A first build or a full refresh records no keys, and a build that
    refreshed most rows reads the whole table anyway: every row is tested.
    Relationship tests read the dimensions whole; a fact row written earlier is not tested
    again against a dimension that changed since (a full refresh does). -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do conditions.append(where) -%}{%- endif -%}
    {%- set refreshed = refreshed_rows_condition(relation) -%}
    {%- if refreshed -%}{%- do conditions.append(refreshed) -%}{%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- `(keys) in (select keys from <refreshed>)` when `relation` is a mart whose refreshed keys
    were recorded by this invocation; empty otherwise. -#}
{% macro refreshed_rows_condition(relation) -%}
    {%- if not execute or relation is string or relation.schema != var('marts_schema', 'marts') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set refreshed = relation.schema ~ '_lineage.' ~ relation.identifier ~ '__refreshed' -%}
    {%- set query -%}
        select string_agg(quote_ident(a.attname), ', ' order by a.attnum)
        from pg_catalog.pg_attribute as a
        where a.attrelid = to_regclass({{ dbt.string_literal(refreshed) }})
            and a.attnum > 0 and not a.attisdropped
            and obj_description(a.attrelid, 'pg_class') = {{ dbt.string_literal(invocation_id) }}
            -- most rows refreshed (both analysed once written): the whole table reads faster
            and 2 * (select reltuples from pg_catalog.pg_class where oid = a.attrelid)
                < (select reltuples from pg_catalog.pg_class where oid = {{ dbt.string_literal(adapter.quote(relation.schema) ~ '.' ~ adapter.quote(relation.identifier)) }}::regclass)
    {%- endset -%}
    {%- set keys = run_query(query).columns[0].values()[0] -%}
    {%- if not keys -%}
        {{ return('') }}
    {%- endif -%}
    {{ return('(' ~ keys ~ ') in (select ' ~ keys ~ ' from ' ~ refreshed ~ ')') }}
{%- endmacro %}

{#- Stamp a refreshed-keys table with this invocation (read by `refreshed_rows_condition`). -#}
{% macro stamp_refreshed_keys(refreshed) -%}
    comment on table {{ refreshed }} is {{ dbt.string_literal(invocation_id) }}
{%- endmacro %}
