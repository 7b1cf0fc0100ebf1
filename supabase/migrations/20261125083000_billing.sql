-- Billing: bill runs, invoices and their lines, a double-entry ledger, payments, credit
-- notes, prepaid wallets, tax and fee rates, discounts, one-off charges and dunning.
-- Money is integer cents in the organization's currency; each invoice line is rounded once.
-- The procedures (rating, run_bill_cycle, payments, dunning, reports) live in sql/40_billing.

create type public.charge_kind as enum (
  'recurring', 'proration', 'add_on', 'usage', 'usage_adjustment', 'one_off', 'credit', 'discount', 'tax');
comment on type public.charge_kind is 'What an invoice line is: recurring plan charge (in advance), proration of a mid-cycle change, add-on, usage overage (in arrears), usage re-rated after its invoice, one-off charge, one-off credit, discount, tax or regulatory fee.';

create type public.invoice_status as enum ('open', 'past_due', 'paid', 'written_off', 'void');
comment on type public.invoice_status is 'open: due, not yet overdue by the policy''s grace; past_due: overdue; paid: settled by payments, credits or a wallet; written_off: given up by dunning or staff.';

create type public.tax_kind as enum ('sales_tax', 'usf', 'e911', 'regulatory_fee');
comment on type public.tax_kind is 'sales_tax: state/local tax on service; usf: federal Universal Service Fund contribution; e911: per-line 911 fee; regulatory_fee: any other percentage or per-line fee.';

create type public.ledger_account as enum (
  'accounts_receivable', 'cash', 'revenue_recurring', 'revenue_usage', 'revenue_one_off', 'discounts',
  'credits_issued', 'tax_payable', 'wallet_liability', 'bad_debt');
comment on type public.ledger_account is 'The chart of accounts of the double-entry ledger. Debits are positive amounts, credits negative; every transaction sums to zero.';

create type public.payment_status as enum ('succeeded', 'failed');
comment on type public.payment_status is 'A payment attempt either moved money (succeeded; refunds are tracked in refunded_cents) or did not (failed, with the provider''s code).';

create type public.dunning_step as enum ('reminder', 'past_due', 'suspended', 'restored', 'written_off');
comment on type public.dunning_step is 'What dunning did for an overdue invoice.';

-- Pooled retail plans share their data allowance across the account's lines on pooled plans.
alter table public.plans add column pooled_data boolean not null default false;
comment on column public.plans.pooled_data is 'The plan''s data allowance joins a pool shared by all lines of the account on pooled plans; overage is charged once per account.';

create table public.billing_policies (
  organization_id uuid primary key references public.organizations (id) on delete cascade,
  invoice_prefix text not null default 'INV-',
  credit_note_prefix text not null default 'CN-',
  next_invoice_number bigint not null default 1,
  next_credit_note_number bigint not null default 1,
  payment_terms_days integer not null default 14,
  reminder_days integer[] not null default '{1,7}',
  past_due_after_days integer not null default 1,
  suspend_after_days integer not null default 15,
  write_off_after_days integer not null default 90,
  dunning_enabled boolean not null default true,
  credit_unused_days boolean not null default true,
  apply_wallet_to_invoices boolean not null default true,
  tax_provider text not null default 'rate_table',
  updated_at timestamptz not null default now(),
  constraint billing_policies_numbers check (next_invoice_number >= 1 and next_credit_note_number >= 1),
  constraint billing_policies_terms check (payment_terms_days between 0 and 120),
  constraint billing_policies_dunning_order check (
    past_due_after_days >= 0 and suspend_after_days >= past_due_after_days and write_off_after_days > suspend_after_days),
  constraint billing_policies_reminders check (0 < all (reminder_days)),
  constraint billing_policies_tax_provider check (tax_provider in ('rate_table'))
);
alter table public.billing_policies enable row level security;
comment on table public.billing_policies is 'Per-organization billing and dunning policy, and the gapless invoice and credit-note counters (changed only by the bill run and credit notes).';

create table public.tax_rates (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  code text not null,
  name text not null,
  kind public.tax_kind not null,
  country char(2) not null default 'US',
  state text,
  county text,
  percent numeric(8, 5),
  per_line_cents bigint,
  applies_to public.charge_kind[] not null default '{recurring,proration,add_on,usage,usage_adjustment,one_off,credit,discount}',
  effective daterange not null default daterange('2000-01-01', null, '[)'),
  primary key (organization_id, id),
  unique (organization_id, code),
  constraint tax_rates_one_basis check ((percent is null) <> (per_line_cents is null)),
  constraint tax_rates_percent_range check (percent is null or percent between 0 and 100),
  constraint tax_rates_per_line_positive check (per_line_cents is null or per_line_cents >= 0),
  constraint tax_rates_county_needs_state check (county is null or state is not null),
  constraint tax_rates_no_tax_on_tax check (not ('tax' = any (applies_to)))
);
alter table public.tax_rates enable row level security;
comment on table public.tax_rates is 'Sales taxes and telecom fees by jurisdiction: a percentage of the charges it applies to, or an amount per billed line. state/county null = every state/county of the country.';

create table public.account_discounts (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  description text not null,
  percent_off numeric(5, 2),
  amount_off_cents bigint,
  starts_on date not null,
  ends_on date,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  constraint account_discounts_one_basis check ((percent_off is null) <> (amount_off_cents is null)),
  constraint account_discounts_percent check (percent_off is null or percent_off > 0 and percent_off <= 100),
  constraint account_discounts_amount check (amount_off_cents is null or amount_off_cents > 0),
  constraint account_discounts_dates check (ends_on is null or ends_on > starts_on)
);
alter table public.account_discounts enable row level security;
create index account_discounts_account_idx on public.account_discounts (organization_id, account_id);
comment on table public.account_discounts is 'Discounts and promotions on an account''s recurring charges, for the cycles that start within [starts_on, ends_on).';

create table public.account_charges (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  subscriber_id uuid,
  kind public.charge_kind not null,
  description text not null,
  amount_cents bigint not null,
  charge_on date not null default current_date,
  invoice_id uuid,
  created_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  primary key (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, subscriber_id) references public.subscribers (organization_id, id),
  constraint account_charges_kind check (kind in ('one_off', 'credit')),
  constraint account_charges_sign check ((kind = 'one_off' and amount_cents > 0) or (kind = 'credit' and amount_cents < 0))
);
alter table public.account_charges enable row level security;
create index account_charges_unbilled_idx on public.account_charges (organization_id, account_id) where invoice_id is null;
comment on table public.account_charges is 'One-off charges (activation fee, device) and credits (goodwill) waiting for the next invoice; invoice_id is set when billed.';

create table public.bill_runs (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  billing_month date not null,
  as_of timestamptz not null,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  run_by text not null default current_user,
  accounts_due integer not null default 0,
  invoices_created integer not null default 0,
  first_invoice_number bigint,
  last_invoice_number bigint,
  total_cents bigint not null default 0,
  tax_cents bigint not null default 0,
  primary key (organization_id, id),
  constraint bill_runs_month check (billing_month = date_trunc('month', billing_month)::date)
);
alter table public.bill_runs enable row level security;
create index bill_runs_month_idx on public.bill_runs (organization_id, billing_month);
comment on table public.bill_runs is 'Each call of run_bill_cycle: the billing month, what it billed and the invoice numbers it used. A re-run of a month bills only accounts not billed yet.';
comment on column public.bill_runs.accounts_due is 'Accounts whose cycle of the month had started and that had no invoice for it; those with nothing to bill get no invoice.';

create table public.invoices (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  number bigint not null,
  display_number text not null,
  account_id uuid not null,
  bill_run_id uuid not null,
  billing_month date not null,
  period_start date not null,
  period_end date not null,
  issued_on date not null,
  due_on date not null,
  currency char(3) not null,
  jurisdiction text,
  subtotal_cents bigint not null,
  discount_cents bigint not null,
  tax_cents bigint not null,
  total_cents bigint not null,
  amount_paid_cents bigint not null default 0,
  amount_credited_cents bigint not null default 0,
  amount_written_off_cents bigint not null default 0,
  status public.invoice_status not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, number),
  unique (organization_id, account_id, billing_month),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, bill_run_id) references public.bill_runs (organization_id, id),
  constraint invoices_total check (total_cents = subtotal_cents + discount_cents + tax_cents),
  constraint invoices_settlement check (
    amount_paid_cents >= 0 and amount_credited_cents >= 0 and amount_written_off_cents >= 0
    and amount_paid_cents + amount_credited_cents + amount_written_off_cents <= greatest(total_cents, 0)),
  constraint invoices_period check (period_end > period_start)
);
alter table public.invoices enable row level security;
create index invoices_open_idx on public.invoices (organization_id, due_on) where status in ('open', 'past_due');
create index invoices_account_idx on public.invoices (organization_id, account_id, period_start);
comment on table public.invoices is 'One invoice per account and billing month: recurring charges for the cycle starting period_start (in advance), usage and prorations of the cycle before (in arrears). Numbers are gapless per organization.';
comment on column public.invoices.total_cents is 'subtotal + discount (negative) + tax. Outstanding = total - paid - credited - written off.';

create table public.invoice_lines (
  organization_id uuid not null,
  invoice_id uuid not null,
  line_number integer not null,
  subscriber_id uuid,
  kind public.charge_kind not null,
  description text not null,
  quantity numeric,
  unit text,
  unit_price_cents numeric,
  amount_cents bigint not null,
  service_start date,
  service_end date,
  plan_id uuid,
  tax_rate_id uuid,
  jurisdiction text,
  primary key (organization_id, invoice_id, line_number),
  foreign key (organization_id, invoice_id) references public.invoices (organization_id, id)
);
alter table public.invoice_lines enable row level security;
create index invoice_lines_subscriber_idx on public.invoice_lines (organization_id, subscriber_id, service_start) where subscriber_id is not null;
comment on table public.invoice_lines is 'The lines of an invoice, each rounded once to cents. Never changed after the bill run; corrections come as credit notes or adjustment lines on a later invoice.';

create table public.payments (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  amount_cents bigint not null,
  currency char(3) not null,
  method text not null default 'card',
  provider text not null default 'manual',
  provider_payment_id text,
  idempotency_key text not null,
  status public.payment_status not null,
  failure_code text,
  failure_message text,
  refunded_cents bigint not null default 0,
  received_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, idempotency_key),
  unique (organization_id, provider, provider_payment_id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  constraint payments_amount check (amount_cents > 0),
  constraint payments_refunds check (refunded_cents between 0 and amount_cents and (status = 'succeeded' or refunded_cents = 0)),
  constraint payments_failure check ((status = 'failed') = (failure_code is not null))
);
alter table public.payments enable row level security;
create index payments_account_idx on public.payments (organization_id, account_id, received_at);
comment on table public.payments is 'Payment attempts (cards, ACH, cash) as recorded by record_payment — by staff or the Stripe/Zift webhooks. Failed attempts are kept for dunning and churn analysis.';

create table public.credit_notes (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  number bigint not null,
  display_number text not null,
  invoice_id uuid not null,
  account_id uuid not null,
  amount_cents bigint not null,
  reason text not null,
  created_at timestamptz not null default now(),
  created_by uuid default auth.uid(),
  primary key (organization_id, id),
  unique (organization_id, number),
  foreign key (organization_id, invoice_id) references public.invoices (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  constraint credit_notes_amount check (amount_cents > 0)
);
alter table public.credit_notes enable row level security;
comment on table public.credit_notes is 'Credits against an issued invoice (numbered gaplessly like invoices): reduce what is owed, or go to the wallet when the invoice was already settled.';

create table public.wallet_transactions (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  kind text not null,
  amount_cents bigint not null,
  balance_after_cents bigint not null,
  idempotency_key text,
  payment_id uuid,
  invoice_id uuid,
  credit_note_id uuid,
  description text,
  created_at timestamptz not null default now(),
  primary key (organization_id, id),
  unique (organization_id, account_id, idempotency_key),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  constraint wallet_transactions_kind check (kind in ('top_up', 'overpayment', 'credit', 'invoice_payment', 'refund')),
  constraint wallet_transactions_amount check (amount_cents <> 0),
  constraint wallet_transactions_balance check (balance_after_cents >= 0)
);
alter table public.wallet_transactions enable row level security;
create index wallet_transactions_account_idx on public.wallet_transactions (organization_id, account_id, created_at);
comment on table public.wallet_transactions is 'Prepaid wallet movements per account; the balance after each is kept and never negative. A top-up carries an idempotency key, so a repeated top-up credits once.';

create table public.ledger_entries (
  organization_id uuid not null,
  id bigint generated always as identity,
  transaction_id uuid not null,
  posted_at timestamptz not null default now(),
  source text not null,
  ledger_account public.ledger_account not null,
  amount_cents bigint not null,
  account_id uuid,
  invoice_id uuid,
  payment_id uuid,
  credit_note_id uuid,
  jurisdiction text,
  primary key (organization_id, id),
  constraint ledger_entries_source check (source in ('invoice', 'payment', 'refund', 'credit_note', 'write_off', 'wallet'))
);
alter table public.ledger_entries enable row level security;
create index ledger_entries_transaction_idx on public.ledger_entries (organization_id, transaction_id);
create index ledger_entries_invoice_idx on public.ledger_entries (organization_id, invoice_id) where invoice_id is not null;
create index ledger_entries_account_idx on public.ledger_entries (organization_id, account_id, ledger_account);
comment on table public.ledger_entries is 'The double-entry ledger: debits positive, credits negative; the entries of one transaction_id sum to zero (checked per statement). Accounts-receivable entries name the invoice they settle. Append-only.';

create table public.dunning_events (
  organization_id uuid not null,
  id uuid not null default gen_random_uuid(),
  account_id uuid not null,
  invoice_id uuid,
  step public.dunning_step not null,
  days_overdue integer not null,
  occurred_at timestamptz not null default now(),
  details jsonb not null default '{}',
  primary key (organization_id, id),
  foreign key (organization_id, account_id) references public.accounts (organization_id, id),
  foreign key (organization_id, invoice_id) references public.invoices (organization_id, id)
);
alter table public.dunning_events enable row level security;
create unique index dunning_events_once_idx on public.dunning_events (organization_id, invoice_id, step, days_overdue) where step <> 'restored';
create index dunning_events_account_idx on public.dunning_events (organization_id, account_id, occurred_at);
comment on table public.dunning_events is 'What dunning did and when: reminders (one per policy day), past due, suspension, restore on payment, write-off. Each step happens once per invoice.';
