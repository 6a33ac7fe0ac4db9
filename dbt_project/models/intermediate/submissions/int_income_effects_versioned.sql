-- Every income_effects row ever loaded, with the version of its reporting unit × period × kind:
-- is_current is false once a later submission (a correction) replaced the file it came from.

{{ versioned_rows('income_effects') }}
