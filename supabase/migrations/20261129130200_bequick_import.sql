-- Migration out of BeQuick: a persistent staging area for export files (one batch per file,
-- one row per record with its line number, every value kept as text exactly as exported),
-- the issues validation finds, and the table that maps BeQuick line states to Wingtel's.
-- The procedure (validate_import_data, migrate_subscriber_data, migration_summary_report)
-- is in sql/60_import; `wingtel import bequick` drives it (docs/migrating-from-bequick.md).

create type public.import_outcome as enum ('created', 'updated', 'unchanged', 'skipped', 'rejected');
comment on type public.import_outcome is 'What became of a staged row: created, updated or unchanged (migrated); skipped (a blocking issue); rejected (the row could not be parsed).';
create type public.import_severity as enum ('blocking', 'warning');
comment on type public.import_severity is 'blocking: the row is not migrated until the file is fixed; warning: migrated, worth a look.';

create table public.import_batches (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  source text not null default 'bequick',
  shape text not null check (shape in ('subscription_export', 'staging', 'mapped')),
  file_name text not null,
  file_sha256 text not null check (file_sha256 ~ '^[0-9a-f]{64}$'),
  mapping jsonb,
  row_count integer not null default 0,
  imported_by text not null default current_user,
  imported_at timestamptz not null default now(),
  validated_at timestamptz,
  migrated_at timestamptz,
  primary key (organization_id, id)
);
alter table public.import_batches enable row level security;
create index import_batches_file_idx on public.import_batches (organization_id, file_sha256);
comment on table public.import_batches is 'One export file loaded for migration: who loaded it and when, the file''s name and SHA-256, its shape (recognised by the header, or mapped), and when it was validated and migrated.';
comment on column public.import_batches.mapping is 'For shape mapped: the column mapping used (Wingtel column → the file''s header).';

create table public.import_rows (
  organization_id uuid not null,
  batch_id uuid not null,
  line_number integer not null check (line_number > 0),
  parse_error text,
  subscriber_ref text,
  account_ref text,
  account_name text,
  first_name text,
  last_name text,
  email text,
  contact_phone text,
  mdn text,
  iccid text,
  imsi text,
  imei text,
  status text,
  plan_name text,
  plan_ref text,
  plan_price text,
  billing_day text,
  start_date text,
  end_date text,
  last_payment_date text,
  address_line1 text,
  address_line2 text,
  city text,
  state text,
  postal_code text,
  country text,
  carrier text,
  source_created_at text,
  extra jsonb not null default '{}'::jsonb,
  outcome public.import_outcome,
  subscriber_id uuid,
  primary key (organization_id, batch_id, line_number),
  foreign key (organization_id, batch_id) references public.import_batches (organization_id, id) on delete cascade
);
alter table public.import_rows enable row level security;
comment on table public.import_rows is 'Staged export rows, values as text exactly as in the file (line_number: the physical line the record starts on). Columns of the file that Wingtel does not use are kept in extra.';
comment on column public.import_rows.parse_error is 'Why the row could not be read (wrong column count, invalid UTF-8); such rows are rejected.';
comment on column public.import_rows.subscriber_ref is 'The source''s id of the line (BeQuick subscription_id or external_id); becomes subscribers.external_id.';
comment on column public.import_rows.account_ref is 'The source''s id of the customer (BeQuick user_profile_id; the staging shape uses external_id); becomes accounts.external_id.';

create table public.import_issues (
  organization_id uuid not null,
  batch_id uuid not null,
  id bigint generated always as identity,
  line_number integer,
  issue_type text not null,
  severity public.import_severity not null,
  column_name text,
  value text,
  message text not null,
  candidates text[],
  subscriber_id uuid,
  primary key (organization_id, batch_id, id),
  foreign key (organization_id, batch_id) references public.import_batches (organization_id, id) on delete cascade
);
alter table public.import_issues enable row level security;
create index import_issues_line_idx on public.import_issues (organization_id, batch_id, line_number);
comment on table public.import_issues is 'Every problem validation found, with the row''s line number (null for a line missing from the export: subscriber_id says which).';
comment on column public.import_issues.candidates is 'For an unknown plan: the closest catalog plans.';

create table public.import_status_map (
  source_status text primary key check (source_status = lower(btrim(source_status))),
  line_status public.line_status not null,
  note text
);
alter table public.import_status_map enable row level security;
comment on table public.import_status_map is 'BeQuick line states (lower case, trimmed) and common variants, mapped to Wingtel''s line_status. Add a row to accept another spelling.';

insert into public.import_status_map (source_status, line_status, note) values
  ('draft', 'pending', 'Never activated in BeQuick: migrates as pending; activate it in Wingtel.'),
  ('pending', 'pending', 'Activation or port-in in progress at the carrier.'),
  ('pending activation', 'pending', null),
  ('active', 'active', null),
  ('activated', 'active', null),
  ('live', 'active', null),
  ('suspended', 'suspended', 'BeQuick exports no reason: migrates with reason customer_request.'),
  ('suspend', 'suspended', null),
  ('hotlined', 'suspended', null),
  ('cancelled', 'cancelled', null),
  ('canceled', 'cancelled', null),
  ('deactivated', 'cancelled', null),
  ('disconnected', 'cancelled', null),
  ('terminated', 'cancelled', null),
  ('inactive', 'cancelled', null),
  ('ported out', 'ported_out', null),
  ('ported_out', 'ported_out', null),
  ('port out', 'ported_out', null),
  ('error', 'failed', 'Failed at the carrier in BeQuick.'),
  ('failed', 'failed', null);
