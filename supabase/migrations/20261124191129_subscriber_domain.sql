-- The subscriber domain: catalog (carriers, wholesale and retail plans, add-ons), customer
-- accounts, lines (subscribers), SIMs, devices, subscriptions, ports, notes, the lifecycle
-- event log and the outbox of carrier commands. Validation, lifecycle functions, policies
-- and audit hooks are in sql/20_domain (compiled by `wingtel db sync`).

create type public.carrier_adapter as enum ('thingspace', 'att_control_center', 'tmobile_aggregator');
comment on type public.carrier_adapter is 'Which provisioning API a carrier is reached through.';
create type public.plan_status as enum ('active', 'retired');
create type public.add_on_kind as enum ('data_pack', 'international', 'feature');
create type public.recurrence as enum ('one_off', 'monthly');
create type public.account_status as enum ('active', 'suspended', 'closed');
create type public.line_status as enum ('pending', 'active', 'suspended', 'cancelled', 'ported_out', 'failed');
comment on type public.line_status is 'Business state of a line: what the operator asked for. pending: activation or port-in requested; failed: the carrier refused it.';
create type public.network_status as enum ('none', 'active', 'suspended', 'deactivated');
comment on type public.network_status is 'State of the line on the carrier''s network, as last confirmed by the carrier.';
create type public.suspend_reason as enum ('non_payment', 'lost_or_stolen', 'customer_request', 'fraud');
create type public.sim_kind as enum ('physical', 'esim');
create type public.sim_state as enum ('inventory', 'assigned', 'active', 'suspended', 'deactivated', 'retired');
create type public.device_compatibility as enum ('compatible', 'incompatible', 'unknown');
create type public.port_direction as enum ('in', 'out');
create type public.port_status as enum ('submitted', 'confirmed', 'rejected', 'completed', 'cancelled');
create type public.carrier_command_kind as enum (
  'activate', 'suspend', 'restore', 'deactivate', 'change_plan', 'swap_sim', 'change_device', 'port_in', 'port_out');
create type public.command_status as enum ('pending', 'in_flight', 'succeeded', 'failed', 'dead');
comment on type public.command_status is 'Outbox state: pending (waiting for the worker), in_flight (sent; awaiting the carrier), succeeded, failed (carrier refused: business state rolled back), dead (gave up after retries).';

-- Catalog -------------------------------------------------------------------------------

create table public.carriers (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  code text not null,
  name text not null,
  adapter public.carrier_adapter not null,
  max_actions_per_line_per_day integer,
  max_plan_changes_per_month integer,
  allows_plan_change_while_suspended boolean not null default true,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, code),
  constraint carriers_limits_positive check (coalesce(max_actions_per_line_per_day, 1) > 0 and coalesce(max_plan_changes_per_month, 1) > 0)
);
alter table public.carriers enable row level security;
comment on table public.carriers is 'Host networks the MVNO provisions lines on, with the adapter used and the carrier''s limits (null: no limit).';
comment on column public.carriers.max_actions_per_line_per_day is 'Provisioning actions allowed per line per day (ThingSpace: about 5).';
comment on column public.carriers.max_plan_changes_per_month is 'Plan changes allowed per line per calendar month (ThingSpace: 4).';

create table public.carrier_rate_plans (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  carrier_id uuid not null,
  code text not null,
  name text not null,
  monthly_cost_cents bigint not null check (monthly_cost_cents >= 0),
  included_data_mb bigint check (included_data_mb >= 0),
  included_voice_minutes integer check (included_voice_minutes >= 0),
  included_sms integer check (included_sms >= 0),
  overage_data_cents_per_mb numeric(12, 4) not null default 0 check (overage_data_cents_per_mb >= 0),
  pooled boolean not null default false,
  active boolean not null default true,
  primary key (organization_id, id),
  unique (organization_id, carrier_id, code),
  foreign key (organization_id, carrier_id) references public.carriers (organization_id, id)
);
alter table public.carrier_rate_plans enable row level security;
comment on table public.carrier_rate_plans is 'Wholesale plans the MVNO buys from a carrier: cost per line and what is included (null: unlimited). Pooled plans share allowances across lines.';

create table public.plans (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  code text not null,
  name text not null,
  description text,
  price_cents bigint not null check (price_cents >= 0),
  data_mb bigint check (data_mb >= 0),
  voice_minutes integer check (voice_minutes >= 0),
  sms integer check (sms >= 0),
  overage_data_cents_per_gb bigint not null default 0 check (overage_data_cents_per_gb >= 0),
  overage_voice_cents_per_minute bigint not null default 0 check (overage_voice_cents_per_minute >= 0),
  overage_sms_cents bigint not null default 0 check (overage_sms_cents >= 0),
  carrier_rate_plan_id uuid not null,
  status public.plan_status not null default 'active',
  self_service boolean not null default true,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, code),
  foreign key (organization_id, carrier_rate_plan_id) references public.carrier_rate_plans (organization_id, id)
);
alter table public.plans enable row level security;
comment on table public.plans is 'Retail plans sold to customers, billed monthly in advance; allowances null mean unlimited. Each maps to the carrier rate plan the line is provisioned on.';
comment on column public.plans.self_service is 'Whether customers may choose this plan themselves in the portal.';

create table public.add_ons (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  code text not null,
  name text not null,
  kind public.add_on_kind not null,
  recurrence public.recurrence not null,
  price_cents bigint not null check (price_cents >= 0),
  data_mb bigint check (data_mb >= 0),
  active boolean not null default true,
  self_service boolean not null default true,
  primary key (organization_id, id),
  unique (organization_id, code)
);
alter table public.add_ons enable row level security;
comment on table public.add_ons is 'Extras on a line: data packs, international calling, features; one-off or monthly.';

-- Customers and lines -------------------------------------------------------------------

create table public.accounts (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  external_id text,
  name text not null,
  email extensions.citext,
  phone text,
  address_line1 text,
  address_line2 text,
  city text,
  state text,
  postal_code text,
  country char(2) not null default 'US',
  county text,
  billing_day smallint not null default 1,
  status public.account_status not null default 'active',
  tags text[] not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, external_id),
  constraint accounts_billing_day_range check (billing_day between 1 and 28)
);
alter table public.accounts enable row level security;
create index accounts_email_idx on public.accounts (organization_id, email);
comment on table public.accounts is 'The paying customer: contact, billing address (state, county and postal code locate the tax jurisdiction), billing day (1–28).';
comment on column public.accounts.external_id is 'Id in the previous system (BeQuick).';

create table public.sim_cards (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  iccid text not null,
  kind public.sim_kind not null default 'physical',
  eid text,
  activation_code text,
  imsi text,
  carrier_id uuid not null,
  state public.sim_state not null default 'inventory',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, iccid),
  foreign key (organization_id, carrier_id) references public.carriers (organization_id, id),
  constraint sim_cards_esim_fields check (kind = 'esim' or (eid is null and activation_code is null))
);
alter table public.sim_cards enable row level security;
comment on table public.sim_cards is 'SIM inventory: physical cards and eSIM profiles (EID and LPA activation code). Its state follows the line it serves.';

create table public.devices (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  imei text not null,
  make text,
  model text,
  byod boolean not null default false,
  compatibility public.device_compatibility not null default 'unknown',
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, imei)
);
alter table public.devices enable row level security;
comment on table public.devices is 'Handsets and modems by IMEI; byod marks devices customers brought themselves.';

create table public.subscribers (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  mdn text,
  carrier_id uuid not null,
  status public.line_status not null default 'pending',
  network_status public.network_status not null default 'none',
  suspend_reason public.suspend_reason,
  current_sim_id uuid,
  current_device_id uuid,
  external_id text,
  tags text[] not null default '{}',
  activated_at timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, carrier_id) references public.carriers (organization_id, id),
  foreign key (organization_id, current_sim_id) references public.sim_cards (organization_id, id),
  foreign key (organization_id, current_device_id) references public.devices (organization_id, id),
  constraint subscribers_suspend_reason check ((status = 'suspended') = (suspend_reason is not null))
);
alter table public.subscribers enable row level security;
create unique index subscribers_live_mdn_idx on public.subscribers (organization_id, mdn)
  where status in ('pending', 'active', 'suspended');
create unique index subscribers_live_sim_idx on public.subscribers (organization_id, current_sim_id)
  where status in ('pending', 'active', 'suspended');
create index subscribers_account_idx on public.subscribers (organization_id, account_id);
create index subscribers_status_idx on public.subscribers (organization_id, status);
create unique index subscribers_external_id_idx on public.subscribers (organization_id, external_id);
comment on table public.subscribers is 'One line (phone number) each. status is the business state the operator asked for; network_status what the carrier last confirmed. Changed only through the lifecycle functions.';
comment on column public.subscribers.mdn is 'The line''s number in E.164 (+1NPANXXXXXX); null until the carrier assigns one.';

create table public.subscriptions (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  subscriber_id uuid not null,
  plan_id uuid not null,
  effective tstzrange not null,
  reason text,
  carrier_confirmed_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id),
  foreign key (organization_id, plan_id) references public.plans (organization_id, id),
  constraint subscriptions_no_overlap exclude using gist (
    organization_id with =, subscriber_id with =, effective with &&),
  constraint subscriptions_half_open check (not isempty(effective) and lower_inc(effective) and not upper_inc(effective) and not lower_inf(effective))
);
alter table public.subscriptions enable row level security;
comment on table public.subscriptions is 'Which plan a line is on over time: half-open ranges [from, to) that never overlap for one line. A downgrade at period end is a row starting at the period end.';

create table public.subscriber_add_ons (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  subscriber_id uuid not null,
  add_on_id uuid not null,
  effective tstzrange not null,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id),
  foreign key (organization_id, add_on_id) references public.add_ons (organization_id, id),
  constraint subscriber_add_ons_half_open check (not isempty(effective) and lower_inc(effective) and not upper_inc(effective))
);
alter table public.subscriber_add_ons enable row level security;
create index subscriber_add_ons_subscriber_idx on public.subscriber_add_ons (organization_id, subscriber_id);
comment on table public.subscriber_add_ons is 'Add-ons on a line over a half-open period (one-off packs: the period they can be used in).';

create table public.port_requests (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  subscriber_id uuid not null,
  direction public.port_direction not null,
  mdn text not null,
  other_carrier text not null,
  account_number text,
  pin text,
  status public.port_status not null default 'submitted',
  rejection_reason text,
  requested_at timestamptz not null default now(),
  completed_at timestamptz,
  primary key (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id)
);
alter table public.port_requests enable row level security;
create index port_requests_subscriber_idx on public.port_requests (organization_id, subscriber_id);
comment on table public.port_requests is 'Number ports in and out. account_number and pin are the losing carrier''s secrets: only the service role reads them; they never reach customers, staff reads or the audit trail.';
comment on column public.port_requests.other_carrier is 'The losing carrier for a port-in, the gaining carrier for a port-out.';

create table public.notes (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  subscriber_id uuid,
  body text not null check (length(btrim(body)) > 0),
  author_id uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id)
);
alter table public.notes enable row level security;
create index notes_account_idx on public.notes (organization_id, account_id, created_at);
comment on table public.notes is 'Customer-care notes on an account or one of its lines (staff only).';

create table public.carrier_commands (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  subscriber_id uuid not null,
  carrier_id uuid not null,
  kind public.carrier_command_kind not null,
  payload jsonb not null default '{}'::jsonb,
  rollback_state jsonb not null default '{}'::jsonb,
  idempotency_key text not null,
  status public.command_status not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  carrier_request_id text,
  result jsonb,
  error text,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  primary key (organization_id, id),
  unique (idempotency_key),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id),
  foreign key (organization_id, carrier_id) references public.carriers (organization_id, id)
);
alter table public.carrier_commands enable row level security;
create index carrier_commands_ready_idx on public.carrier_commands (next_attempt_at) where status = 'pending';
create index carrier_commands_subscriber_idx on public.carrier_commands (organization_id, subscriber_id, created_at);
create unique index carrier_commands_one_open_per_line_idx on public.carrier_commands (organization_id, subscriber_id)
  where status in ('pending', 'in_flight');
comment on table public.carrier_commands is 'Outbox of provisioning requests to carriers, written by the lifecycle functions and sent by the worker with idempotency_key. One open command per line at a time.';
comment on column public.carrier_commands.rollback_state is 'What to restore on the line (and its SIMs, subscription) if the carrier refuses.';

create table public.subscriber_events (
  organization_id uuid not null,
  id bigint generated always as identity,
  subscriber_id uuid not null,
  occurred_at timestamptz not null default now(),
  kind text not null,
  reason text,
  actor_user_id uuid,
  actor_name text,
  command_id uuid,
  details jsonb not null default '{}'::jsonb,
  primary key (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id)
);
alter table public.subscriber_events enable row level security;
create index subscriber_events_subscriber_idx on public.subscriber_events (organization_id, subscriber_id, occurred_at);
comment on table public.subscriber_events is 'Lifecycle of each line in plain words: what was asked, by whom, why, and what the carrier answered. The activity feed reads it.';

-- Customer links point at real accounts from now on.
alter table public.customer_identities
  add constraint customer_identities_account_fkey foreign key (organization_id, account_id)
  references public.accounts (organization_id, id);
