-- Usage (CDRs): what each line used, as carriers report it. Partitioned by month of the
-- record's start time (partitions live in the schema `partitions`, never exposed), keyed so
-- that a record delivered twice (same organization, source, record id and start) counts once.
-- Records that cannot be attributed are kept in a quarantine with the reason, never dropped.
-- Ingestion: public.ingest_usage (sql/30_usage), fed by `wingtel usage ingest`.

create type public.usage_kind as enum ('data', 'voice', 'sms');
comment on type public.usage_kind is 'data: bytes; voice: seconds; sms: messages.';

create schema partitions;
comment on schema partitions is 'Partitions of partitioned tables; reached only through their parent (which carries the row-level security).';
revoke all on schema partitions from public;

create table public.usage_batches (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  source text not null,
  file_name text,
  file_sha256 text,
  received_at timestamptz not null default now(),
  received_by text not null default current_user,
  rows_total integer not null default 0,
  rows_inserted integer not null default 0,
  rows_duplicate integer not null default 0,
  rows_quarantined integer not null default 0,
  primary key (organization_id, id)
);
alter table public.usage_batches enable row level security;
create index usage_batches_file_idx on public.usage_batches (organization_id, source, file_sha256);
comment on table public.usage_batches is 'One delivery of usage (a carrier file or a callback batch) and what became of its rows.';

create table public.usage_records (
  organization_id uuid not null,
  source text not null,
  source_record_id text not null,
  recorded_at timestamptz not null,
  subscriber_id uuid not null,
  kind public.usage_kind not null,
  quantity bigint not null,
  batch_id uuid not null,
  primary key (organization_id, source, source_record_id, recorded_at),
  constraint usage_records_quantity_not_negative check (quantity >= 0)
) partition by range (recorded_at);
alter table public.usage_records enable row level security;
create index usage_records_subscriber_idx on public.usage_records (organization_id, subscriber_id, recorded_at);
comment on table public.usage_records is 'Rated usage input, one row per carrier record: start time, line, kind and quantity (bytes, seconds or messages). A record delivered again is ignored. No foreign key to subscribers (ingestion resolves the line itself; a per-row check would halve the load rate).';
comment on column public.usage_records.source_record_id is 'The carrier''s own id of the record; with source and start time it makes re-deliveries count once.';

create table partitions.usage_records_default partition of public.usage_records default;
comment on table partitions.usage_records_default is 'Catch-all partition; ingestion creates monthly partitions first, so it stays empty.';

create table public.usage_quarantine (
  organization_id uuid not null,
  id bigint generated always as identity,
  batch_id uuid not null,
  line_number integer,
  raw jsonb not null,
  reason text not null,
  received_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, batch_id) references public.usage_batches (organization_id, id)
);
alter table public.usage_quarantine enable row level security;
create index usage_quarantine_batch_idx on public.usage_quarantine (organization_id, batch_id);
comment on table public.usage_quarantine is 'Usage rows that could not be taken, kept with the line of the file and the reason (unknown MDN, negative quantity, dated in the future, unreadable).';

create table public.usage_daily (
  organization_id uuid not null,
  subscriber_id uuid not null,
  day date not null,
  data_bytes bigint not null default 0,
  voice_seconds bigint not null default 0,
  sms_count bigint not null default 0,
  primary key (organization_id, subscriber_id, day),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id)
);
alter table public.usage_daily enable row level security;
comment on table public.usage_daily is 'Usage per line per day (in the organization''s time zone), kept up to date by ingestion: the table analysts and forecasting read.';

-- Ingestion resolves lines by number whatever their state (a record may arrive after a cancellation).
create index subscribers_mdn_idx on public.subscribers (organization_id, mdn);
