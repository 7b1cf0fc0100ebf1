-- Tenancy: organizations (MVNO brands), their staff, invitations and customer logins,
-- plus the tamper-evident audit trail every business table writes to.
-- Functions, policies, grants and triggers are in sql/10_tenancy and sql/01_audit
-- (compiled into a later migration by `wingtel db sync`).

-- Staff roles, in ascending order of privilege: comparisons such as role >= 'agent' rely on it.
create type public.member_role as enum ('viewer', 'analyst', 'agent', 'operator', 'admin', 'owner');
comment on type public.member_role is 'Staff role in an organization, lowest to highest: viewer and analyst read; agent also writes customer-care data; operator runs operations; admin manages catalog and members; owner everything.';

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  slug extensions.citext not null unique,
  name text not null,
  currency char(3) not null default 'USD',
  time_zone text not null default 'America/New_York',
  settings jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  created_by uuid references auth.users (id) on delete set null,
  constraint organizations_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  constraint organizations_name_present check (length(btrim(name)) between 1 and 200),
  constraint organizations_currency_iso check (currency ~ '^[A-Z]{3}$'),
  constraint organizations_settings_object check (jsonb_typeof(settings) = 'object')
);
alter table public.organizations enable row level security;
comment on table public.organizations is 'A tenant: one MVNO brand. Every tenant-owned row carries its id as organization_id.';
comment on column public.organizations.slug is 'Short unique handle used by the CLI (--org SLUG): lower-case letters, digits and dashes.';
comment on column public.organizations.currency is 'ISO 4217 code; all money of the organization is in integer minor units of it.';
comment on column public.organizations.time_zone is 'IANA time zone; billing periods and daily rollups follow it.';
comment on column public.organizations.settings is 'Operator-controlled switches (for example which self-service functions customers may call).';

create table public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role public.member_role not null,
  invited_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
create index organization_members_user_id_idx on public.organization_members (user_id, organization_id, role);
alter table public.organization_members enable row level security;
comment on table public.organization_members is 'Staff of an organization and their role. Changed only through add_organization_member, change_member_role, remove_organization_member and accept_invitation.';

create table public.organization_invitations (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  email extensions.citext not null,
  role public.member_role not null,
  token_hash bytea not null unique,
  invited_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '7 days',
  accepted_at timestamptz,
  accepted_by uuid references auth.users (id) on delete set null,
  revoked_at timestamptz,
  primary key (organization_id, id),
  constraint organization_invitations_email_shape check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  constraint organization_invitations_one_outcome check (accepted_at is null or revoked_at is null)
);
create unique index organization_invitations_open_email_idx
  on public.organization_invitations (organization_id, email) where accepted_at is null and revoked_at is null;
alter table public.organization_invitations enable row level security;
comment on table public.organization_invitations is 'Pending and past invitations to join an organization. The token is shown once to the inviter; only its SHA-256 is kept.';

create table public.customer_identities (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  account_id uuid not null,
  created_at timestamptz not null default now(),
  created_by uuid references auth.users (id) on delete set null,
  primary key (organization_id, user_id)
);
create index customer_identities_user_id_idx on public.customer_identities (user_id, organization_id, account_id);
alter table public.customer_identities enable row level security;
comment on table public.customer_identities is 'Links a self-service login (auth.users) to one customer account of an organization; customers see only that account''s data.';
comment on column public.customer_identities.account_id is 'The customer account (public.accounts, added with the subscriber domain).';

-- The audit trail lives in its own schema, never exposed through the API.
create schema audit;
comment on schema audit is 'Append-only, hash-chained audit trail of every change to business tables.';

create table audit.entries (
  organization_id uuid not null,
  id bigint generated always as identity (cache 1000),
  occurred_at timestamptz not null default now(),
  txid xid8 not null default pg_current_xact_id(),
  actor_user_id uuid,
  actor_name text,
  db_role text not null,
  request_id text,
  action text not null,
  category text not null,
  table_name text not null,
  record_id text not null,
  row_data jsonb,
  changed_columns text[],
  old_values text[],
  new_values text[],
  primary key (organization_id, id),
  constraint entries_action check (action in ('insert', 'update', 'delete')),
  constraint entries_shape check (
    case action
      when 'update' then changed_columns is not null and row_data is null
      else row_data is not null and changed_columns is null
    end)
);
alter table audit.entries enable row level security;
comment on table audit.entries is 'One row per changed business row: who (auth.uid() or the service''s name), what, when, and the request id. Append-only. Read it through audit.changes, which shows old and new values as JSON.';
comment on column audit.entries.actor_user_id is 'auth.uid() of the caller, null for services.';
comment on column audit.entries.actor_name is 'The service or user name the caller set in wingtel.actor (the functions server sets it per request).';
comment on column audit.entries.db_role is 'The database role the change ran as (authenticated, service_role, postgres…).';
comment on column audit.entries.category is 'Who may read it besides admins and owners: customer_care entries are visible to agents.';
comment on column audit.entries.record_id is 'The changed row''s primary key without organization_id, as text (several key columns joined by commas).';
comment on column audit.entries.row_data is 'insert: the new row; delete: the removed row (as JSON, secret columns left out).';
comment on column audit.entries.changed_columns is 'update: every column of the table in order, null where the column did not change (aligned with old_values and new_values).';
comment on column audit.entries.txid is 'Writing transaction; sealing only takes entries of finished transactions.';

create table audit.seals (
  organization_id uuid not null,
  chain_seq bigint not null,
  entry_id bigint not null,
  chain_hash bytea not null,
  sealed_at timestamptz not null default now(),
  primary key (organization_id, chain_seq),
  unique (organization_id, entry_id),
  foreign key (organization_id, entry_id) references audit.entries (organization_id, id)
);
alter table audit.seals enable row level security;
comment on table audit.seals is 'The hash chain: chain_hash(n) = sha256(chain_hash(n-1) || sha256(entry content)), per organization, in sealing order. Append-only.';

create table audit.chain_heads (
  organization_id uuid primary key,
  last_seq bigint not null,
  last_hash bytea not null,
  sealed_at timestamptz not null default now()
);
alter table audit.chain_heads enable row level security;
comment on table audit.chain_heads is 'The newest seal of each organization''s chain; export it regularly to anchor the chain outside the database.';
