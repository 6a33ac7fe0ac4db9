-- The file-level problems recorded with each file (audit.submission_files.errors and
-- .warnings, jsonb arrays of {code, sheet, row, column, value, message_zh, message_en}),
-- one row per problem: why a file was refused, which total row did not add up.

with

source as (

    select * from {{ source('audit', 'submission_files') }}

),

problems as (

    select
        source.submission_id,
        'error' as problem_kind,
        errors.problem,
        errors.problem_number
    from source
    cross join lateral jsonb_array_elements(source.errors) with ordinality as errors (problem, problem_number)

    union all

    select
        source.submission_id,
        'warning' as problem_kind,
        warnings.problem,
        warnings.problem_number
    from source
    cross join lateral jsonb_array_elements(source.warnings) with ordinality as warnings (problem, problem_number)

),

renamed as (

    select

        ----------  ids
        {{ surrogate_key(['submission_id', 'problem_kind', 'problem_number']) }} as submission_problem_id,
        submission_id,

        ---------- strings
        problem_kind,
        problem ->> 'code' as problem_code,
        problem ->> 'sheet' as source_sheet,
        problem ->> 'column' as column_name,
        problem ->> 'value' as cell_value,
        problem ->> 'message_zh' as message_zh,
        problem ->> 'message_en' as message_en,

        ---------- numerics
        problem_number::integer as problem_number,
        case
            when jsonb_typeof(problem -> 'row') = 'number' then (problem ->> 'row')::numeric::integer
        end as source_row_number

    from problems

)

select * from renamed
