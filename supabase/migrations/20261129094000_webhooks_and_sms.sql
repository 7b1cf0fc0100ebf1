-- Inbound provider events (Stripe, Zift, Twilio, carriers) and SMS conversations.
-- The functions server (`wingtel serve`) verifies a request's signature, then makes one SQL
-- call (sql/50_functions) that records the event once — unique (provider, event id) — and
-- applies it in the same transaction.

-- Stripe customers map to accounts (the Stripe objects Wingtel creates also carry
-- metadata.wingtel_account_id; events about customers created elsewhere resolve through this).
alter table public.accounts add column stripe_customer_id text;
comment on column public.accounts.stripe_customer_id is 'The Stripe customer (cus_…) that pays for this account; Stripe events about it apply here.';
create unique index accounts_stripe_customer_idx on public.accounts (stripe_customer_id) where stripe_customer_id is not null;

-- Carrier callbacks find their command by the carrier's request id.
create index carrier_commands_request_idx on public.carrier_commands (carrier_request_id) where carrier_request_id is not null;

-- Every inbound event, once. Not exposed through the API (private schema): an event may match
-- no organization (an unknown customer or number) and is still kept with that outcome. Staff
-- read their organization's events through the view public.webhook_events.
create table private.webhook_receipts (
  provider text not null,
  event_id text not null,
  event_type text not null,
  organization_id uuid references public.organizations (id) on delete cascade,
  outcome text not null,
  detail text,
  request_id text,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id),
  constraint webhook_receipts_provider check (provider in ('stripe', 'zift', 'twilio', 'verizon', 'att', 'tmobile')),
  constraint webhook_receipts_outcome check (outcome in ('applied', 'ignored', 'unmatched'))
);
comment on table private.webhook_receipts is 'Each provider event exactly once (primary key provider + event id): a re-delivery finds its row and changes nothing. outcome: applied (changed data), ignored (a type Wingtel does not act on), unmatched (no organization, account, line or command it belongs to).';
create index webhook_receipts_org_idx on private.webhook_receipts (organization_id, received_at desc);

-- SMS through Twilio.
create type public.sms_direction as enum ('inbound', 'outbound');
create type public.sms_status as enum (
  'accepted', 'scheduled', 'queued', 'sending', 'sent', 'receiving', 'received',
  'delivered', 'undelivered', 'failed', 'read', 'partially_delivered', 'canceled');
comment on type public.sms_status is 'Twilio''s MessageStatus values. A message only moves forward (private.sms_status_rank): a late "sent" never overwrites "delivered".';

create table public.messaging_numbers (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  phone_number text not null,
  provider text not null default 'twilio',
  label text,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  constraint messaging_numbers_e164 check (phone_number ~ '^\+[1-9][0-9]{7,14}$')
);
comment on table public.messaging_numbers is 'The organization''s own SMS numbers (Twilio). An inbound message belongs to the organization that owns the number it was sent to.';
create unique index messaging_numbers_phone_idx on public.messaging_numbers (phone_number);

create table public.sms_messages (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  direction public.sms_direction not null,
  provider_sid text,
  from_number text not null,
  to_number text not null,
  body text not null default '',
  num_media integer not null default 0 check (num_media >= 0),
  status public.sms_status not null,
  error_code text,
  account_id uuid,
  subscriber_id uuid,
  keyword text,
  routed_to text,
  in_reply_to uuid,
  sent_by uuid references auth.users (id) on delete set null,
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, provider_sid),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id),
  foreign key (organization_id, in_reply_to) references public.sms_messages (organization_id, id),
  constraint sms_messages_body_length check (length(body) <= 1600),
  constraint sms_messages_routed_to check (routed_to in ('care'))
);
comment on table public.sms_messages is 'SMS conversations: inbound messages (with the keyword recognised, or routed to customer care) and outbound replies and notifications, with Twilio''s delivery status.';
comment on column public.sms_messages.provider_sid is 'Twilio MessageSid (SM…/MM…); unique per organization, which makes a re-delivered webhook a no-op.';
comment on column public.sms_messages.keyword is 'The command an inbound message was read as (BAL, USAGE, HELP, STOP, START), null for free text.';
comment on column public.sms_messages.sent_by is 'The staff member who wrote an outbound message; null for automatic replies and notifications.';
comment on column public.sms_messages.routed_to is 'care: free text that customer care must answer (open in public.care_inbox).';
comment on column public.sms_messages.next_attempt_at is 'For an outbound message waiting to be sent through the Twilio API (status accepted, no SID yet): when the SMS outbox sends it next.';
create index sms_messages_outbox_idx on public.sms_messages (next_attempt_at) where direction = 'outbound' and status = 'accepted' and provider_sid is null;
create index sms_messages_sid_idx on public.sms_messages (provider_sid) where provider_sid is not null;
create index sms_messages_account_idx on public.sms_messages (organization_id, account_id, created_at desc);
create index sms_messages_care_idx on public.sms_messages (organization_id, created_at) where routed_to = 'care';

create table public.sms_opt_outs (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  phone_number text not null,
  keyword text not null,
  opted_out_at timestamptz not null default now(),
  primary key (organization_id, phone_number)
);
comment on table public.sms_opt_outs is 'Numbers that sent an opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) to one of the organization''s numbers; START, YES or UNSTOP removes the row. No marketing SMS goes to a number listed here.';

alter table public.messaging_numbers enable row level security;
alter table public.sms_messages enable row level security;
alter table public.sms_opt_outs enable row level security;

-- The scheduler of `wingtel serve`: each daily job runs once per organization and local day,
-- whichever server gets there first (primary key), with its outcome.
create table private.job_runs (
  job text not null,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  run_on date not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  outcome text,
  result jsonb,
  primary key (job, organization_id, run_on),
  constraint job_runs_outcome check (outcome in ('succeeded', 'failed'))
);
comment on table private.job_runs is 'Daily scheduled jobs (bill run, dunning) per organization and local day: claimed by one server, then finished with the job''s result or its error. Read it through public.scheduled_job_runs.';
