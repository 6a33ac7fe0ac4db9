{#- The read-only role for BI tools (see README "bi_reader").

    Created NOLOGIN: it is a group role. Give people or tools their own login role and make
    them members (`create role metabase login password '…' in role bi_reader;`), so a
    password never lives in this project and access is revoked per person.

    Roles are cluster-wide: creating it is idempotent and tolerates a concurrent build
    creating it at the same moment (several warehouses may share one server). -#}
{% macro ensure_bi_reader(role='bi_reader') %}
    {%- if execute -%}
    do $bi_reader$
    begin
        if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
            begin
                create role {{ role }} nologin;
            exception when duplicate_object or unique_violation then
                null;  -- created concurrently by another build
            end;
        end if;
    end
    $bi_reader$;
    create schema if not exists marts;
    grant usage on schema marts to {{ role }};
    -- tables created in marts later (by this role) are readable without waiting for a grant
    alter default privileges in schema marts grant select on tables to {{ role }};
    {%- if var('marts_schema', 'marts') != 'marts' %}
    -- the schema being built is read by no BI login until its tables are published (its
    -- tables carry their grants, which take effect once they are moved into marts)
    create schema if not exists {{ var('marts_schema') }};
    revoke all on schema {{ var('marts_schema') }} from {{ role }};
    revoke all on schema {{ var('marts_schema') }} from public;
    {%- endif %}
    {{ revoke_bi_reader_elsewhere(role) }}
    {%- endif -%}
{% endmacro %}

{#- bi_reader never reads raw rows, quarantine, audit, the register, staging, intermediate
    or snapshots: take back anything granted there by hand (a no-op normally). -#}
{% macro revoke_bi_reader_elsewhere(role='bi_reader') %}
    do $revoke$
    declare
        s text;
    begin
        foreach s in array array[
            'raw', 'quarantine', 'audit', 'ref', 'staging', 'intermediate', 'snapshots', 'seeds',
            'marts_lineage', 'marts_build_lineage', 'marts_swap'
        ] loop
            if exists (select from pg_catalog.pg_namespace where nspname = s) then
                execute format('revoke all on all tables in schema %I from {{ role }}', s);
                execute format('revoke all on schema %I from {{ role }}', s);
            end if;
        end loop;
    end
    $revoke$;
{% endmacro %}

{#- After every run: SELECT on every relation in marts (dbt's `grants` config does it per
    model on each rebuild; this also covers a relation rebuilt by hand or by a partial run). -#}
{% macro grant_bi_reader_on_marts(role='bi_reader') %}
    {%- if execute -%}
    {%- if var('marts_schema', 'marts') == 'marts' %}
    grant usage on schema marts to {{ role }};
    {%- endif %}
    grant select on all tables in schema {{ var('marts_schema', 'marts') }} to {{ role }};
    {%- endif -%}
{% endmacro %}
