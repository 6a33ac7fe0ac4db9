-- Warehouse tables written by the ingestion package (dbt builds staging/marts on top).
-- Idempotent: applied before every ingest, under an advisory lock.
--   raw        landed rows, append-only; every row carries its submission and source row
--   quarantine rejected rows with their reasons (zh/en); never visible to BI
--   audit      one row per file received, with its outcome and counts
--   ref        the region register (civil tree + Corps tree)
--
-- raw.* and quarantine.* rows reference audit.submission_files by submission_id without a
-- foreign key: a per-row FK check cost 2.9 s per million rows here (more than the COPY
-- itself). The write path guarantees the link (the audit row is inserted first, in the same
-- transaction as the rows), and dbt's relationships tests check it on every build.
-- submission_id grows with insertion order, so raw.* index it with BRIN (a few pages,
-- nearly free to maintain under COPY; a btree cost 0.7 s per million rows).

create schema if not exists raw;
create schema if not exists quarantine;
create schema if not exists audit;
create schema if not exists ref;

create table if not exists ref.regions (
    tree text not null check (tree in ('civil', 'corps')),
    code text not null,
    name text not null,
    level smallint not null,
    level_name text not null,
    parent_code text,
    civil_code text,
    source text not null,
    primary key (tree, code)
);
create index if not exists regions_code_idx on ref.regions (code);
-- the units inside a reporting unit's area (a name resolved to its code walks the tree down)
create index if not exists regions_parent_idx on ref.regions (tree, parent_code);

create table if not exists audit.submission_files (
    submission_id bigint generated always as identity primary key,
    file_hash text not null,                 -- sha256 of the bytes received
    original_name text not null,             -- as received; stored, never used as a path
    landing_path text,                       -- where it was picked up
    archive_path text,                       -- the kept copy: <home>/archive/<hash[:2]>/<hash>
    size_bytes bigint not null,
    file_format text,                        -- what the file is: xlsx / xls / ods / csv / tsv / json (else its suffix)
    encoding text,                           -- detected text encoding (csv, tsv): utf-8, utf-8-sig, gbk, gb18030, utf-16-le
    received_at timestamptz not null default now(),
    processed_at timestamptz,
    reporting_unit_code text,
    period text,                             -- 2024-06 or 2024Q2
    period_start date,
    period_end date,
    record_kinds text[] not null default '{}',
    status text not null check (status in ('loaded', 'rejected', 'duplicate')),
    duplicate_of bigint references audit.submission_files (submission_id),
    rows_received integer not null default 0,
    rows_loaded integer not null default 0,
    rows_quarantined integer not null default 0,
    kind_counts jsonb not null default '{}',  -- kind -> {received, loaded, quarantined}
    errors jsonb not null default '[]',       -- file-level problems (why it was refused)
    warnings jsonb not null default '[]',     -- e.g. total row does not add up
    normalisations jsonb not null default '[]',  -- what was changed to read the file
    timings jsonb not null default '{}',      -- seconds per stage
    run_id text,                              -- Airflow run id, or 'cli'
    constraint rows_reconcile check (status <> 'loaded' or rows_received = rows_loaded + rows_quarantined)
);
-- `pairstats reprocess` runs an archived file again: the new row points to the original receipt
alter table audit.submission_files add column if not exists
    reprocess_of bigint references audit.submission_files (submission_id);
-- the same bytes land once; later copies are recorded as 'duplicate' (a re-run is no copy)
drop index if exists audit.submission_files_hash_uq;
create unique index if not exists submission_files_hash_once_uq
    on audit.submission_files (file_hash) where status <> 'duplicate' and reprocess_of is null;
create index if not exists submission_files_unit_period_idx
    on audit.submission_files (reporting_unit_code, period);
-- what a run already recorded for a file (a retried Airflow batch reports it, not a second row)
create index if not exists submission_files_run_idx
    on audit.submission_files (run_id, landing_path);

-- Which loaded file is the current version of each reporting unit × period × record kind,
-- and which earlier one it replaced: the one definition of "current", read by the ingester
-- (to tell a district what its file corrects) and by dbt (stg_audit__submission_versions).
-- Versions are ordered by receipt: a re-run (reprocess_of) takes the place of the file it
-- re-runs, so re-running an old file never overrides a correction received after it.
-- A file without a period (pairings only: a registration, contract v1.1) is never superseded
-- by another file — two registrations of one unit both stay current, and a later pairings row
-- of the same 结对编号 changes that pairing (dbt: int_pairings_historised); only a re-run of the
-- same receipt replaces its earlier attempt: such files are partitioned by their receipt.
create or replace view audit.submission_versions as
with kinds as (
    select
        s.submission_id,
        k.record_kind,
        s.reporting_unit_code,
        s.period,
        s.period_start,
        s.period_end,
        s.original_name,
        s.received_at,
        coalesce(s.reprocess_of, s.submission_id) as receipt_id
    from audit.submission_files s
    cross join lateral unnest(s.record_kinds) as k (record_kind)
    where s.status = 'loaded'
)
select
    submission_id,
    record_kind,
    reporting_unit_code,
    period,
    period_start,
    period_end,
    original_name,
    received_at,
    receipt_id,
    row_number() over versions as version_number,
    lag(submission_id) over versions as supersedes_submission_id,
    lead(submission_id) over versions as superseded_by_submission_id,
    last_value(submission_id) over (
        versions rows between unbounded preceding and unbounded following
    ) as current_submission_id,
    lead(submission_id) over versions is null as is_current
from kinds
window versions as (
    partition by reporting_unit_code, coalesce(period, '#' || receipt_id), record_kind
    order by receipt_id, submission_id
);

create table if not exists raw.pairings (
    submission_id bigint not null,  -- audit.submission_files; no FK: see the note at the top
    file_hash text,                 -- not written since v1.1 (audit.submission_files has it): narrower rows
    source_sheet text,
    source_row integer not null,
    reporting_unit_code text not null,
    period text,                    -- null for a pairings-only file (a registration)
    pairing_code text not null,
    urban_unit_code text not null,
    urban_unit_name text,
    rural_unit_code text not null,
    rural_unit_name text,
    pairing_form text not null,
    paired_on date not null,
    ended_on date,
    agreement_signed boolean not null,
    is_approximate boolean not null default false,
    approximate_fields text[],
    loaded_at timestamptz not null default now()
);
create index if not exists pairings_submission_brin on raw.pairings using brin (submission_id)
    with (autosummarize = on);
alter index raw.pairings_submission_brin set (autosummarize = on);
-- contract v1.1: a pairings-only file (a registration) has no period
alter table raw.pairings alter column period drop not null;
create index if not exists pairings_unit_code_idx on raw.pairings (reporting_unit_code, pairing_code);

create table if not exists raw.activities (
    submission_id bigint not null,  -- audit.submission_files; no FK: see the note at the top
    file_hash text,                 -- not written since v1.1 (audit.submission_files has it): narrower rows
    source_sheet text,
    source_row integer not null,
    reporting_unit_code text not null,
    period text not null,
    activity_date date not null,
    pairing_code text not null,
    activity_type text not null,
    title text not null,
    participants integer not null,
    party_member_participants integer not null,
    problems_resolved integer,
    suggestions_collected integer,
    is_approximate boolean not null default false,
    approximate_fields text[],
    loaded_at timestamptz not null default now()
);
create index if not exists activities_submission_brin on raw.activities using brin (submission_id)
    with (autosummarize = on);
alter index raw.activities_submission_brin set (autosummarize = on);

create table if not exists raw.projects (
    submission_id bigint not null,  -- audit.submission_files; no FK: see the note at the top
    file_hash text,                 -- not written since v1.1 (audit.submission_files has it): narrower rows
    source_sheet text,
    source_row integer not null,
    reporting_unit_code text not null,
    period text not null,
    project_code text not null,
    project_name text not null,
    pairing_code text not null,
    category text not null,
    start_date date not null,
    status text not null,
    investment_yuan numeric(18, 2) not null,
    land_mu numeric(16, 2),
    households_benefited integer,
    is_approximate boolean not null default false,
    approximate_fields text[],
    loaded_at timestamptz not null default now()
);
create index if not exists projects_submission_brin on raw.projects using brin (submission_id)
    with (autosummarize = on);
alter index raw.projects_submission_brin set (autosummarize = on);

create table if not exists raw.income_effects (
    submission_id bigint not null,  -- audit.submission_files; no FK: see the note at the top
    file_hash text,                 -- not written since v1.1 (audit.submission_files has it): narrower rows
    source_sheet text,
    source_row integer not null,
    reporting_unit_code text not null,
    period text not null,
    pairing_code text not null,
    -- each measure may be empty: null = not reported, never 0 (the ingester keeps at least one)
    collective_income_increase_yuan numeric(18, 2),
    villager_income_increase_yuan numeric(18, 2),
    produce_sold_tonnes numeric(16, 3),
    produce_sales_yuan numeric(18, 2),
    jobs_created integer,
    households_benefited integer,
    is_approximate boolean not null default false,
    approximate_fields text[],
    loaded_at timestamptz not null default now()
);
create index if not exists income_effects_submission_brin on raw.income_effects using brin (submission_id)
    with (autosummarize = on);
alter index raw.income_effects_submission_brin set (autosummarize = on);
-- contract v1.1: warehouses created when every measure was required converge to the same shape
alter table raw.income_effects
    alter column collective_income_increase_yuan drop not null,
    alter column villager_income_increase_yuan drop not null,
    alter column produce_sold_tonnes drop not null,
    alter column produce_sales_yuan drop not null,
    alter column jobs_created drop not null,
    alter column households_benefited drop not null;

-- loaded_at grows with loading order like submission_id: BRIN too. dbt's freshness check
-- (int_quality_freshness) finds the newest rows through it instead of reading every row.
create index if not exists pairings_loaded_at_brin on raw.pairings using brin (loaded_at)
    with (autosummarize = on);
create index if not exists activities_loaded_at_brin on raw.activities using brin (loaded_at)
    with (autosummarize = on);
create index if not exists projects_loaded_at_brin on raw.projects using brin (loaded_at)
    with (autosummarize = on);
create index if not exists income_effects_loaded_at_brin on raw.income_effects using brin (loaded_at)
    with (autosummarize = on);

create table if not exists quarantine.rejected_rows (
    id bigint generated always as identity primary key,
    submission_id bigint not null,  -- audit.submission_files; no FK: see the note at the top
    file_hash text not null,
    record_kind text not null,
    source_sheet text,
    source_row integer not null,
    column_name text,
    value text,
    reason_code text not null,
    reason_zh text not null,
    reason_en text not null,
    row_data jsonb not null,                  -- the row's cells as received (header -> text)
    quarantined_at timestamptz not null default now()
);
create index if not exists rejected_rows_submission_idx on quarantine.rejected_rows (submission_id);

-- raw rows no longer carry the file's hash (one join away, in audit.submission_files)
alter table raw.pairings alter column file_hash drop not null;
alter table raw.activities alter column file_hash drop not null;
alter table raw.projects alter column file_hash drop not null;
alter table raw.income_effects alter column file_hash drop not null;

-- warehouses created before the foreign keys were dropped converge to the same shape
alter table raw.pairings drop constraint if exists pairings_submission_id_fkey;
alter table raw.activities drop constraint if exists activities_submission_id_fkey;
alter table raw.projects drop constraint if exists projects_submission_id_fkey;
alter table raw.income_effects drop constraint if exists income_effects_submission_id_fkey;
alter table quarantine.rejected_rows drop constraint if exists rejected_rows_submission_id_fkey;
drop index if exists raw.pairings_submission_idx;
drop index if exists raw.activities_submission_idx;
drop index if exists raw.projects_submission_idx;
drop index if exists raw.income_effects_submission_idx;

-- Nightly data quality (pairstats quality, DAG nightly_data_quality). One row per night's run,
-- one row per check × reporting unit × period × run (unit and period null for a check of the
-- whole warehouse), and one row per alert sent, so a problem already reported is not sent as new.
create table if not exists audit.dq_runs (
    run_id text primary key,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    as_of date not null,                       -- the day the checks judge (deadlines passed by then)
    checks integer not null default 0,
    failed integer not null default 0,
    data_docs text,                            -- index.html of the GX Data Docs built by this run
    status text not null default 'running' check (status in ('running', 'done', 'failed'))
);

create table if not exists audit.dq_results (
    id bigint generated always as identity primary key,
    run_id text not null references audit.dq_runs (run_id),
    checked_at timestamptz not null default now(),
    check_name text not null,                  -- reporting_completeness, outliers, ... or gx:<suite>
    severity text not null check (severity in ('error', 'warning')),
    reporting_unit_code text,
    period_code text,
    outcome text not null check (outcome in ('pass', 'fail', 'approximate')),
    observed_value numeric,
    failing_rows integer not null default 0,
    detail_zh text,
    detail_en text,
    examples jsonb not null default '[]'       -- the worst few, for the digest
);
create index if not exists dq_results_run_idx on audit.dq_results (run_id);
create index if not exists dq_results_problem_idx on audit.dq_results (check_name, reporting_unit_code, period_code);

create table if not exists audit.alerts (
    id bigint generated always as identity primary key,
    sent_at timestamptz not null default now(),
    kind text not null check (kind in ('digest', 'task_failure', 'overdue_run')),
    run_id text,                               -- dq run, or the Airflow run the alert is about
    alert_key text,                            -- what it is about: an overdue run is alerted once
    channel text not null,                     -- email, webhook
    recipients text[] not null default '{}',
    subject text not null,
    status text not null check (status in ('sent', 'failed', 'skipped')),
    error text,
    new_problems integer not null default 0,
    open_problems integer not null default 0
);
create index if not exists alerts_key_idx on audit.alerts (kind, alert_key);
