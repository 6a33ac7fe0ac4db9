with

source as (

    select * from {{ source('ref', 'regions') }}

),

renamed as (

    select

        ----------  ids
        tree || ':' || code as region_id,
        tree,
        code as region_code,
        parent_code,
        civil_code,

        ---------- strings
        name as region_name,
        level_name,
        source as register_source,

        ---------- numerics
        level as region_level

    from source

)

select * from renamed
