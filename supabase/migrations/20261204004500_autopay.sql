-- Autopay: saved payment methods (provider tokens only, never card numbers), the account's
-- autopay switch, the retry schedule after a declined charge, and the charge queue the payment
-- worker of `wingtel serve` drains (an outbox: claimed with SKIP LOCKED under a lease, sent to
-- Stripe or Zift with the charge's idempotency key, the outcome written back through SQL).
-- The functions are in sql/40_billing/35_autopay.sql; docs/BILLING.md, "Autopay".

create table public.payment_methods (
  organization_id uuid not null references public.organizations (id),
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  provider text not null,
  token text not null,
  provider_customer_id text,
  brand text,
  last4 text,
  exp_month integer,
  exp_year integer,
  is_default boolean not null default false,
  status text not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  removed_at timestamptz,
  primary key (organization_id, id),
  unique (organization_id, provider, token),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  constraint payment_methods_provider check (provider in ('stripe', 'zift')),
  constraint payment_methods_status check (status in ('active', 'removed')),
  constraint payment_methods_stripe_customer check (provider <> 'stripe' or provider_customer_id ~ '^cus_[A-Za-z0-9]+$'),
  constraint payment_methods_stripe_token check (provider <> 'stripe' or token ~ '^(pm|card|src)_[A-Za-z0-9_]+$'),
  -- A token: printable, no spaces. That it is no card number is checked by a trigger
  -- (private.validate_payment_method: no Luhn-valid run of 13 to 19 digits).
  constraint payment_methods_token check (token ~ '^[!-~]{4,255}$'),
  constraint payment_methods_last4 check (last4 is null or last4 ~ '^[0-9]{4}$'),
  constraint payment_methods_expiry check ((exp_month is null) = (exp_year is null) and (exp_month is null or (exp_month between 1 and 12 and exp_year between 2000 and 2100))),
  constraint payment_methods_removed check ((status = 'removed') = (removed_at is not null) and (status = 'active' or not is_default))
);
alter table public.payment_methods enable row level security;
create unique index payment_methods_default_idx on public.payment_methods (organization_id, account_id) where is_default;
create index payment_methods_account_idx on public.payment_methods (organization_id, account_id);
comment on table public.payment_methods is 'Saved payment methods of an account as provider tokens (a Stripe PaymentMethod with its Customer, or a Zift stored-card token) with the brand, last four digits and expiry for display. Card numbers never enter the database. The default method is what autopay charges.';
comment on column public.payment_methods.token is 'The provider''s token: pm_… for Stripe, the stored-card token for Zift.';
comment on column public.payment_methods.provider_customer_id is 'The Stripe Customer (cus_…) the PaymentMethod is attached to; Stripe charges off-session need it.';

alter table public.accounts add column autopay boolean not null default false;
comment on column public.accounts.autopay is 'Charge the default payment method for each invoice when it is issued (and again on the policy''s retry days after a decline).';

alter table public.billing_policies add column autopay_retry_days integer[] not null default '{3,5,7}';
alter table public.billing_policies add constraint billing_policies_autopay_retry_days
  check (cardinality(autopay_retry_days) <= 10 and 0 < all (autopay_retry_days) and 60 >= all (autopay_retry_days));
comment on column public.billing_policies.autopay_retry_days is 'After a declined autopay charge, how many days until the next attempt: one entry per retry ({3,5,7}: three retries, 3, 5 and 7 days after the decline before them). Empty: no retries.';

create table public.payment_charges (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  invoice_id uuid,
  payment_method_id uuid not null,
  provider text not null,
  origin text not null default 'autopay',
  amount_cents bigint not null,
  currency char(3) not null,
  attempt integer not null default 1,
  idempotency_key text not null,
  status text not null default 'pending',
  sends integer not null default 0,
  max_sends integer not null default 8,
  next_attempt_at timestamptz not null default now(),
  locked_by text,
  lease_until timestamptz,
  provider_payment_id text,
  payment_id uuid,
  failure_code text,
  failure_message text,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (organization_id, id),
  unique (organization_id, idempotency_key),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, invoice_id) references public.invoices (organization_id, id),
  foreign key (organization_id, payment_method_id) references public.payment_methods (organization_id, id),
  foreign key (organization_id, payment_id) references public.payments (organization_id, id),
  constraint payment_charges_amount check (amount_cents > 0),
  constraint payment_charges_origin check (origin in ('autopay', 'staff')),
  constraint payment_charges_attempt check (attempt >= 1 and sends >= 0 and max_sends >= 1),
  constraint payment_charges_status check (status in ('pending', 'awaiting_confirmation', 'succeeded', 'declined', 'dead', 'canceled')),
  constraint payment_charges_outcome check ((status <> 'succeeded' or payment_id is not null) and (status <> 'declined' or failure_code is not null)),
  constraint payment_charges_finished check ((status in ('pending', 'awaiting_confirmation')) = (finished_at is null))
);
alter table public.payment_charges enable row level security;
-- One charge in flight per invoice: a second scheduler, a re-run or a manual charge cannot double it.
create unique index payment_charges_in_flight_idx on public.payment_charges (organization_id, invoice_id)
  where status in ('pending', 'awaiting_confirmation') and invoice_id is not null;
create index payment_charges_due_idx on public.payment_charges (next_attempt_at) where status = 'pending';
create index payment_charges_invoice_idx on public.payment_charges (organization_id, invoice_id, attempt);
create index payment_charges_provider_idx on public.payment_charges (provider, provider_payment_id) where provider_payment_id is not null;
comment on table public.payment_charges is 'Charges of saved payment methods (autopay and charges staff ask for), queued for the payment worker: pending → succeeded | declined | dead (sends exhausted) | canceled, or awaiting_confirmation while the provider finishes (Stripe processing, Zift X02) and its webhook settles it. Each carries the idempotency key sent to the provider, so a resend never charges twice.';
comment on column public.payment_charges.origin is 'autopay: queued by queue_autopay_charges for an issued invoice; staff: asked for with charge_payment_method.';
comment on column public.payment_charges.attempt is 'Which attempt at the invoice this is: 1 when it is issued, 2… the retries after declines (billing_policies.autopay_retry_days).';
comment on column public.payment_charges.sends is 'How often the worker sent it (network failures, 5xx and 429 are sent again with the same idempotency key); dead after max_sends.';
comment on column public.payment_charges.idempotency_key is 'Sent as Stripe''s Idempotency-Key and as Zift''s transactionCode: a resend after a timeout is answered with the first result.';
