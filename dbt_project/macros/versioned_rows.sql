{#
    Every raw row of one record kind, with the version of its reporting unit × period × kind
    (from int_submission_kinds_versioned): is_current is false once a later submission (a
    correction) replaced the file the row came from. Used by the int_<kind>_versioned models.
#}
{% macro versioned_rows(record_kind) %}

with

rows_of_kind as (

    select * from {{ ref('stg_raw__' ~ record_kind) }}

),

submission_kinds as (

    select * from {{ ref('int_submission_kinds_versioned') }}
    where record_kind = '{{ record_kind }}'

),

joined as (

    select
        rows_of_kind.*,
        submission_kinds.period_grain,
        submission_kinds.period_start,
        submission_kinds.period_end,
        submission_kinds.version_number,
        submission_kinds.superseded_by_submission_id,
        submission_kinds.current_submission_id,
        submission_kinds.is_current

    from rows_of_kind
    inner join submission_kinds
        on rows_of_kind.submission_id = submission_kinds.submission_id

)

select * from joined

{% endmacro %}
