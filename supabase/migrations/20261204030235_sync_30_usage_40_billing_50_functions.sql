-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/30_usage/10_ingest.sql (sha256 a6a3aa862b898ca422c4b2d544fce9ea4da4218ea31f338b5abc85053b07f07e)
-- Usage ingestion. `wingtel usage ingest` streams a file with COPY into the session's
-- temporary table usage_staging (syntax already checked, problems noted per line), then calls
-- ingest_usage, which does the rest in set-based statements: resolve each MDN to its line,
-- quarantine what cannot be taken, insert the rest once (re-deliveries are ignored) and add
-- the new usage to the daily rollups.

create or replace function private.ensure_usage_partition(month timestamptz)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  first_day timestamptz := date_trunc('month', month, 'UTC');
  name text := format('usage_records_y%sm%s', to_char(first_day at time zone 'UTC', 'YYYY'), to_char(first_day at time zone 'UTC', 'MM'));
begin
  if to_regclass('partitions.' || name) is not null then
    return;
  end if;
  -- Two ingests creating the same month wait for each other.
  perform pg_advisory_xact_lock(hashtext('wingtel.usage_partitions'));
  if to_regclass('partitions.' || name) is null then
    execute format('create table partitions.%I partition of public.usage_records for values from (%L) to (%L)',
                   name, first_day, first_day + interval '1 month');
    execute format('comment on table partitions.%I is %L', name, 'Usage records of one month (UTC); read them through public.usage_records.');
  end if;
end;
$$;
comment on function private.ensure_usage_partition(timestamptz) is 'Creates the monthly partition of usage_records that holds the given moment (UTC months), if missing.';
revoke all on function private.ensure_usage_partition(timestamptz) from public;

create or replace function public.ingest_usage(organization_id uuid, source text, file_name text default null, file_sha256 text default null)
returns public.usage_batches
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := ingest_usage.organization_id;
  zone text;
  batch public.usage_batches;
  month timestamptz;
begin
  perform private.require_role(org, 'operator');
  if to_regclass('pg_temp.usage_staging') is null then
    raise exception 'no usage_staging table in this session' using errcode = '42P01',
      hint = 'Load the file with `wingtel usage ingest`, which creates and fills it.';
  end if;
  select o.time_zone into zone from public.organizations o where o.id = org;
  if zone is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  if nullif(btrim(ingest_usage.source), '') is null then
    raise exception 'a usage batch needs a source (the carrier or feed it came from)' using errcode = '22023';
  end if;
  insert into public.usage_batches (organization_id, source, file_name, file_sha256)
  values (org, ingest_usage.source, ingest_usage.file_name, ingest_usage.file_sha256)
  returning * into batch;

  for month in
    select distinct date_trunc('month', s.recorded_at, 'UTC') from pg_temp.usage_staging s
    where s.problem is null and s.recorded_at is not null
  loop
    perform private.ensure_usage_partition(month);
  end loop;

  with numbers as (
    -- Carrier files write MDNs as 10 digits; lines keep E.164.
    select n.raw, public.normalize_mdn(n.raw) as mdn
    from (select distinct s.mdn as raw from pg_temp.usage_staging s where s.problem is null) n
  ), lines as (
    -- Each distinct number once: is it valid, and which line has it (a live one first, then the newest).
    select distinct on (n.raw) n.raw, n.mdn, l.id
    from numbers n left join public.subscribers l on l.organization_id = org and l.mdn = n.mdn
    order by n.raw, (l.status in ('pending', 'active', 'suspended')) desc nulls last, l.created_at desc
  ), checked as (
    select s.line_number, s.mdn, s.recorded_at, s.kind, s.quantity, s.record_id, l.id as subscriber_id,
           coalesce(s.problem,
             case
               when l.mdn is null then format('MDN %s is not a valid phone number', s.mdn)
               when l.id is null then format('no line with MDN %s', s.mdn)
               when s.recorded_at > now() + interval '1 hour' then format('usage dated in the future (%s)', s.recorded_at)
               when s.quantity < 0 then format('negative quantity %s', s.quantity)
             end) as reason
    from pg_temp.usage_staging s left join lines l on l.raw = s.mdn
  ), quarantined as (
    insert into public.usage_quarantine (organization_id, batch_id, line_number, raw, reason)
    select org, batch.id, c.line_number,
           jsonb_strip_nulls(jsonb_build_object('mdn', c.mdn, 'recorded_at', c.recorded_at, 'kind', c.kind,
                                                'quantity', c.quantity, 'record_id', c.record_id)),
           c.reason
    from checked c where c.reason is not null
    returning 1
  ), inserted as (
    insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
    select org, ingest_usage.source, c.record_id, c.recorded_at, c.subscriber_id, c.kind::public.usage_kind, c.quantity, batch.id
    from checked c where c.reason is null
    on conflict do nothing
    returning subscriber_id, recorded_at, kind, quantity
  ), rolled as (
    insert into public.usage_daily as d (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
    select org, i.subscriber_id, (i.recorded_at at time zone zone)::date,
           coalesce(sum(i.quantity) filter (where i.kind = 'data'), 0),
           coalesce(sum(i.quantity) filter (where i.kind = 'voice'), 0),
           coalesce(sum(i.quantity) filter (where i.kind = 'sms'), 0)
    from inserted i
    group by i.subscriber_id, (i.recorded_at at time zone zone)::date
    on conflict on constraint usage_daily_pkey do update
      set data_bytes = d.data_bytes + excluded.data_bytes,
          voice_seconds = d.voice_seconds + excluded.voice_seconds,
          sms_count = d.sms_count + excluded.sms_count
    returning 1
  ), counts as (
    select (select count(*) from checked) as total, (select count(*) from inserted) as inserted,
           (select count(*) from quarantined) as quarantined, (select count(*) from rolled) as days
  )
  update public.usage_batches b
     set rows_total = c.total, rows_inserted = c.inserted, rows_quarantined = c.quarantined,
         rows_duplicate = c.total - c.inserted - c.quarantined
    from counts c
   where b.organization_id = org and b.id = batch.id
  returning b.* into batch;
  return batch;
end;
$$;
comment on function public.ingest_usage(uuid, text, text, text) is 'Takes the rows of the session''s usage_staging table into usage_records (operators and services): lines resolved by MDN, re-deliveries ignored, problems quarantined with the reason, daily rollups updated. Returns the batch with its counts.';
revoke all on function public.ingest_usage(uuid, text, text, text) from public, anon;
grant execute on function public.ingest_usage(uuid, text, text, text) to authenticated, service_role;

-- The path carrier callbacks take (no COPY): a JSON array of records, checked one by one like a
-- file's lines (a record that cannot be read is quarantined with the reason, never dropped),
-- then ingest_usage as for a file. Each record:
--   {"mdn": "+13125550101", "recorded_at": "2026-11-02T14:00:00Z", "kind": "data|voice|sms",
--    "quantity": 1048576, "record_id": "<the source's id: a re-delivery counts once>"}
create or replace function private.try_timestamptz(value text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)?$' then
    return null;
  end if;
  if value ~ '(Z|z|[+-]\d{2}(:?\d{2})?)$' and value ~ '[T ]' then
    return value::timestamptz;
  end if;
  return value::timestamp at time zone 'UTC';
exception when others then
  return null;
end;
$$;
comment on function private.try_timestamptz(text) is 'An ISO 8601 timestamp (a date, an optional time, an optional zone; UTC when none is given), or null when the text is not one or names an impossible date.';

create or replace function public.ingest_usage_records(organization_id uuid, source text, records jsonb, reference text default null)
returns public.usage_batches
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(ingest_usage_records.organization_id, 'operator');
  if jsonb_typeof(ingest_usage_records.records) is distinct from 'array' then
    raise exception 'usage records come as a JSON array' using errcode = '22023';
  end if;
  create temp table if not exists usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text,
    quantity bigint, record_id text, problem text) on commit drop;
  truncate pg_temp.usage_staging;
  insert into pg_temp.usage_staging (line_number, mdn, recorded_at, kind, quantity, record_id, problem)
  select r.n, r.value ->> 'mdn', private.try_timestamptz(r.value ->> 'recorded_at'), r.value ->> 'kind',
         case when (r.value ->> 'quantity') ~ '^-?[0-9]{1,18}$' then (r.value ->> 'quantity')::bigint end,
         nullif(r.value ->> 'record_id', ''),
         case
           when jsonb_typeof(r.value) is distinct from 'object' then 'a usage record is a JSON object'
           when nullif(r.value ->> 'mdn', '') is null then 'no mdn'
           when private.try_timestamptz(r.value ->> 'recorded_at') is null then format('recorded_at %s is not a timestamp', coalesce(r.value ->> 'recorded_at', 'missing'))
           when coalesce(r.value ->> 'kind', '') not in ('data', 'voice', 'sms') then format('kind %s is not data, voice or sms', coalesce(r.value ->> 'kind', 'missing'))
           when coalesce(r.value ->> 'quantity', '') !~ '^-?[0-9]{1,18}$' then format('quantity %s is not a whole number', coalesce(r.value ->> 'quantity', 'missing'))
           when nullif(r.value ->> 'record_id', '') is null then 'no record_id (a re-delivery could not be recognised)'
         end
  from jsonb_array_elements(ingest_usage_records.records) with ordinality as r (value, n);
  return public.ingest_usage(ingest_usage_records.organization_id, ingest_usage_records.source, ingest_usage_records.reference, null);
end;
$$;
comment on function public.ingest_usage_records(uuid, text, jsonb, text) is 'Ingests usage records given as a JSON array (the carrier callbacks'' path): each record checked like a file''s line (unreadable ones quarantined with the reason), then ingest_usage. Operators and services; returns the batch with its counts.';
revoke all on function private.try_timestamptz(text), public.ingest_usage_records(uuid, text, jsonb, text) from public, anon;
grant execute on function public.ingest_usage_records(uuid, text, jsonb, text) to authenticated, service_role;

-- >>> sql/40_billing/30_money.sql (sha256 f956f18232b174b163ac70a01c72610efd7d344e15c9a6d1de17e7909c3d8538)
-- Money after the invoice: payments and refunds (recorded by staff or the payment webhooks),
-- credit notes, write-offs and prepaid wallets. Every movement posts one balanced ledger
-- transaction; accounts-receivable entries name the invoice they settle, so an invoice's
-- outstanding amount in the ledger always equals total - paid - credited - written off.
-- Functions that touch an account's money lock its accounts row first, so concurrent
-- payments, top-ups and bill runs on one account run one after the other.

create or replace function private.lock_account(organization_id uuid, account_id uuid)
returns public.accounts
language plpgsql
set search_path = ''
as $$
declare
  found_account public.accounts;
begin
  select a.* into found_account from public.accounts a
   where a.organization_id = lock_account.organization_id and a.id = lock_account.account_id for update;
  if found_account.id is null then
    raise exception 'there is no account % in this organization', lock_account.account_id using errcode = 'P0002';
  end if;
  return found_account;
end;
$$;
comment on function private.lock_account(uuid, uuid) is 'Locks an account row for the rest of the transaction (money movements on one account serialize); raises P0002 if it does not exist.';

create or replace function private.wallet_balance(organization_id uuid, account_id uuid)
returns bigint
language sql
stable
set search_path = ''
as $$
  select coalesce(sum(w.amount_cents), 0)::bigint from public.wallet_transactions w
  where w.organization_id = wallet_balance.organization_id and w.account_id = wallet_balance.account_id
$$;
comment on function private.wallet_balance(uuid, uuid) is 'The prepaid wallet balance of an account in cents (sum of its wallet transactions).';

create or replace function private.unsettled_status(due_on date, organization_id uuid, today date)
returns public.invoice_status
language sql
stable
set search_path = ''
as $$
  select case when unsettled_status.due_on + coalesce(
      (select p.past_due_after_days from public.billing_policies p where p.organization_id = unsettled_status.organization_id), 1)
      <= unsettled_status.today then 'past_due' else 'open' end::public.invoice_status
$$;
comment on function private.unsettled_status(date, uuid, date) is 'open or past_due for an invoice with something still owed, by the organization''s grace days.';

-- Pays the given accounts' open invoices from their wallets, oldest due first.
create or replace function private.apply_wallets(organization_id uuid, invoice_ids uuid[])
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  org uuid := apply_wallets.organization_id;
  applied bigint;
begin
  perform 1 from public.accounts a
   where a.organization_id = org
     and a.id in (select i.account_id from public.invoices i where i.organization_id = org and i.id = any (invoice_ids))
     and exists (select 1 from public.wallet_transactions w where w.organization_id = org and w.account_id = a.id)
   order by a.id for update;
  with balances as (
    select w.account_id, sum(w.amount_cents) as balance from public.wallet_transactions w
    where w.organization_id = org
      and w.account_id in (select i.account_id from public.invoices i where i.organization_id = org and i.id = any (invoice_ids))
    group by w.account_id having sum(w.amount_cents) > 0
  ), due as (
    select i.id, i.account_id, i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding,
           b.balance,
           sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents)
             over (partition by i.account_id order by i.due_on, i.number) as running
    from public.invoices i join balances b on b.account_id = i.account_id
    where i.organization_id = org and i.id = any (invoice_ids) and i.status in ('open', 'past_due')
  ), allocation as materialized (
    select d.id as invoice_id, d.account_id, gen_random_uuid() as transaction_id,
           least(d.outstanding, d.balance - (d.running - d.outstanding)) as amount,
           d.balance - least(d.running, d.balance) as balance_after
    from due d where d.balance - (d.running - d.outstanding) > 0 and d.outstanding > 0
  ), spent as (
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, invoice_id, description)
    select org, a.account_id, 'invoice_payment', -a.amount, a.balance_after, a.invoice_id, 'Invoice paid from wallet'
    from allocation a
    returning 1
  ), posted as (
    insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id)
    select org, a.transaction_id, 'wallet', e.ledger_account, e.amount, a.account_id, e.invoice_id
    from allocation a
    cross join lateral (values ('wallet_liability'::public.ledger_account, a.amount, null::uuid),
                               ('accounts_receivable'::public.ledger_account, -a.amount, a.invoice_id)) e (ledger_account, amount, invoice_id)
    returning 1
  ), settled as (
    update public.invoices i
       set amount_paid_cents = i.amount_paid_cents + a.amount,
           status = case when i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents - a.amount <= 0
                         then 'paid' else i.status end,
           updated_at = now()
      from allocation a
     where i.organization_id = org and i.id = a.invoice_id
    returning a.amount
  )
  -- (spent and posted run to completion whether read or not.)
  select coalesce(sum(s.amount), 0) into applied from settled s;
  return applied;
end;
$$;
comment on function private.apply_wallets(uuid, uuid[]) is 'Pays the given open invoices from their accounts'' wallet balances (oldest due first), with wallet transactions and ledger entries. Returns the cents applied.';

create or replace function public.record_payment(
  organization_id uuid,
  account_id uuid,
  amount_cents bigint,
  idempotency_key text,
  method text default 'card',
  provider text default 'manual',
  provider_payment_id text default null,
  succeeded boolean default true,
  failure_code text default null,
  failure_message text default null,
  received_at timestamptz default now(),
  invoice_id uuid default null)
returns public.payments
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := record_payment.organization_id;
  payer public.accounts;
  payment public.payments;
  remaining bigint;
  allocated_invoices uuid[];
  allocated_amounts bigint[];
  today date;
  zone text;
begin
  perform private.require_role(org, 'agent');
  if record_payment.amount_cents is null or record_payment.amount_cents <= 0 then
    raise exception 'a payment amount must be a positive number of cents, not %', record_payment.amount_cents using errcode = '22023';
  end if;
  if nullif(btrim(record_payment.idempotency_key), '') is null then
    raise exception 'a payment needs an idempotency key' using errcode = '22023',
      hint = 'Use the provider''s event or charge id, so a repeated delivery is recorded once.';
  end if;
  if not record_payment.succeeded and record_payment.failure_code is null then
    raise exception 'a failed payment needs the provider''s failure code' using errcode = '22023';
  end if;
  payer := private.lock_account(org, record_payment.account_id);

  -- The same payment again (a retried call, a re-delivered webhook) is answered, not repeated.
  select p.* into payment from public.payments p
   where p.organization_id = org
     and (p.idempotency_key = record_payment.idempotency_key
          or (record_payment.provider_payment_id is not null and p.provider = record_payment.provider
              and p.provider_payment_id = record_payment.provider_payment_id));
  if payment.id is not null then
    if payment.account_id <> payer.id or payment.amount_cents <> record_payment.amount_cents
       or (payment.status = 'succeeded') <> record_payment.succeeded then
      raise exception 'idempotency key % (or provider payment %) was already used for a different payment', record_payment.idempotency_key,
        record_payment.provider_payment_id using errcode = '22023', hint = 'Each payment needs a key of its own.';
    end if;
    return payment;
  end if;

  select o.time_zone into zone from public.organizations o where o.id = org;
  today := (record_payment.received_at at time zone zone)::date;
  insert into public.payments (organization_id, account_id, amount_cents, currency, method, provider, provider_payment_id, idempotency_key,
                               status, failure_code, failure_message, received_at)
  select org, payer.id, record_payment.amount_cents, o.currency, record_payment.method, record_payment.provider,
         record_payment.provider_payment_id, record_payment.idempotency_key,
         case when record_payment.succeeded then 'succeeded' else 'failed' end::public.payment_status,
         record_payment.failure_code, record_payment.failure_message, record_payment.received_at
  from public.organizations o where o.id = org
  returning * into payment;
  if not record_payment.succeeded then
    return payment;
  end if;

  -- Settle open invoices: the one named first, then the oldest due; the rest goes to the wallet.
  -- (The allocation is kept in two arrays, not a temporary table: no catalog work per payment.)
  select coalesce(array_agg(d.id order by d.running), '{}'),
         coalesce(array_agg(least(d.outstanding, record_payment.amount_cents - (d.running - d.outstanding)) order by d.running), '{}')
    into allocated_invoices, allocated_amounts
  from (
    select i.id, i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding,
           sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents)
             over (order by i.id is distinct from record_payment.invoice_id, i.due_on, i.number) as running
    from public.invoices i
    where i.organization_id = org and i.account_id = payer.id and i.status in ('open', 'past_due')
  ) d
  where record_payment.amount_cents - (d.running - d.outstanding) > 0;
  remaining := record_payment.amount_cents - coalesce((select sum(a) from unnest(allocated_amounts) a), 0);

  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, payment_id)
  select org, payment.id, 'payment', e.ledger_account, e.amount, payer.id, e.invoice_id, payment.id
  from (
    select 'cash'::public.ledger_account as ledger_account, record_payment.amount_cents as amount, null::uuid as invoice_id
    union all
    select 'accounts_receivable', -a.amount, a.invoice_id from unnest(allocated_invoices, allocated_amounts) as a (invoice_id, amount)
    union all
    select 'wallet_liability', -remaining, null where remaining > 0
  ) e;
  update public.invoices i
     set amount_paid_cents = i.amount_paid_cents + a.amount,
         status = case when i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents - a.amount <= 0
                       then 'paid' else i.status end,
         updated_at = now()
    from unnest(allocated_invoices, allocated_amounts) as a (invoice_id, amount)
   where i.organization_id = org and i.id = a.invoice_id;
  if remaining > 0 then
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, payment_id, description)
    values (org, payer.id, 'overpayment', remaining, private.wallet_balance(org, payer.id) + remaining, payment.id,
            'Payment beyond the open invoices');
  end if;
  perform private.restore_if_paid(org, payer.id);
  return payment;
end;
$$;
comment on function public.record_payment(uuid, uuid, bigint, text, text, text, text, boolean, text, text, timestamptz, uuid) is 'Records a payment attempt (agents, services and the payment webhooks), once per idempotency key or provider payment id. A succeeded payment settles open invoices (the named one first, then oldest due), the rest goes to the wallet; a line suspended for non-payment is restored when nothing is overdue.';

-- Many payments at once, set-based (the demo generator's months of card payments, a
-- migration's payment history): the session's temporary table payment_batch holds them,
--   (account_id uuid, invoice_id uuid, amount_cents bigint, idempotency_key text, method text,
--    provider text, provider_payment_id text, succeeded boolean, failure_code text,
--    failure_message text, received_at timestamptz)
-- and each is recorded as record_payment would, with one difference: a succeeded payment
-- settles the invoice it names (up to what is owed) and the rest goes to the wallet, instead of
-- spreading over the account's other open invoices. The rules record_payment checks are checked
-- for the whole batch first (positive amounts, keys, failure codes, at most one succeeded
-- payment per invoice, keys not used before); any problem refuses the batch before anything is
-- written. One statement per table: payments, ledger, invoices, wallets.
create or replace function public.record_payments_in_bulk(organization_id uuid)
returns table (payments integer, succeeded integer, failed integer, settled_cents bigint, to_wallet_cents bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := record_payments_in_bulk.organization_id;
  problem text;
  currency char(3);
begin
  perform private.require_role(org, 'agent');
  if to_regclass('pg_temp.payment_batch') is null then
    raise exception 'no payment_batch table in this session' using errcode = '42P01',
      hint = 'Create the temporary table payment_batch (see the function''s comment) and fill it first.';
  end if;
  select o.currency into currency from public.organizations o where o.id = org;
  if currency is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  select case
           when b.amount_cents is null or b.amount_cents <= 0 then format('a payment amount must be a positive number of cents, not %s', b.amount_cents)
           when nullif(btrim(b.idempotency_key), '') is null then 'a payment needs an idempotency key'
           when b.succeeded is null then format('payment %s: say whether it succeeded', b.idempotency_key)
           when not b.succeeded and b.failure_code is null then format('failed payment %s needs the provider''s failure code', b.idempotency_key)
           when a.id is null then format('payment %s: there is no account %s in this organization', b.idempotency_key, b.account_id)
           when b.invoice_id is not null and i.id is null then format('payment %s: invoice %s is not one of the account''s', b.idempotency_key, b.invoice_id)
         end
    into problem
  from pg_temp.payment_batch b
  left join public.accounts a on a.organization_id = org and a.id = b.account_id
  left join public.invoices i on i.organization_id = org and i.id = b.invoice_id and i.account_id = b.account_id
  where b.amount_cents is null or b.amount_cents <= 0 or nullif(btrim(b.idempotency_key), '') is null or b.succeeded is null
     or (not b.succeeded and b.failure_code is null) or a.id is null or (b.invoice_id is not null and i.id is null)
  limit 1;
  if problem is null then
    select format('idempotency key %s appears %s times in the batch', b.idempotency_key, count(*)) into problem
    from pg_temp.payment_batch b group by b.idempotency_key having count(*) > 1 limit 1;
  end if;
  if problem is null then
    select format('invoice %s has %s succeeded payments in the batch; record them one by one with record_payment', b.invoice_id, count(*))
      into problem
    from pg_temp.payment_batch b where b.succeeded and b.invoice_id is not null group by b.invoice_id having count(*) > 1 limit 1;
  end if;
  if problem is null then
    select format('idempotency key %s%s was already used', b.idempotency_key, coalesce(' (or provider payment ' || b.provider_payment_id || ')', ''))
      into problem
    from pg_temp.payment_batch b
    -- Two probes, each on its unique index (an OR inside one probe would not use either).
    where exists (select 1 from public.payments p where p.organization_id = org and p.idempotency_key = b.idempotency_key)
       or (b.provider_payment_id is not null
           and exists (select 1 from public.payments p where p.organization_id = org and p.provider = coalesce(b.provider, 'manual')
                         and p.provider_payment_id = b.provider_payment_id))
    limit 1;
  end if;
  if problem is not null then
    raise exception '%', problem using errcode = '22023', hint = 'Nothing of the batch was recorded; fix it and call again.';
  end if;

  -- The accounts' money moves one after the other, as with record_payment.
  perform 1 from public.accounts a where a.organization_id = org and a.id in (select b.account_id from pg_temp.payment_batch b)
  order by a.id for update;

  return query
  with recorded as (
    insert into public.payments (organization_id, account_id, amount_cents, currency, method, provider, provider_payment_id, idempotency_key,
                                 status, failure_code, failure_message, received_at)
    select org, b.account_id, b.amount_cents, currency, coalesce(b.method, 'card'), coalesce(b.provider, 'manual'), b.provider_payment_id,
           b.idempotency_key, case when b.succeeded then 'succeeded' else 'failed' end::public.payment_status,
           case when not b.succeeded then b.failure_code end, case when not b.succeeded then b.failure_message end,
           coalesce(b.received_at, now())
    from pg_temp.payment_batch b
    returning *
  ), split as (
    select p.id, p.account_id, p.amount_cents, p.received_at, p.idempotency_key, b.invoice_id,
           least(p.amount_cents, greatest(coalesce(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents, 0), 0))
             as settled
    from recorded p
    join pg_temp.payment_batch b on b.idempotency_key = p.idempotency_key
    left join public.invoices i on i.organization_id = org and i.id = b.invoice_id and i.status in ('open', 'past_due')
    where p.status = 'succeeded'
  ), posted as (
    insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, payment_id)
    select org, s.id, 'payment', e.ledger_account, e.amount, s.account_id, e.invoice_id, s.id
    from split s
    cross join lateral (values ('cash'::public.ledger_account, s.amount_cents, null::uuid),
                               ('accounts_receivable', -s.settled, s.invoice_id),
                               ('wallet_liability', -(s.amount_cents - s.settled), null)) as e (ledger_account, amount, invoice_id)
    where e.amount <> 0
    returning 1
  ), settled_invoices as (
    update public.invoices i
       set amount_paid_cents = i.amount_paid_cents + s.settled,
           status = case when i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents - s.settled <= 0
                         then 'paid' else i.status end,
           updated_at = now()
      from split s
     where i.organization_id = org and i.id = s.invoice_id and s.settled > 0
    returning 1
  ), wallets as (
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, payment_id, description)
    select org, s.account_id, 'overpayment', s.amount_cents - s.settled,
           private.wallet_balance(org, s.account_id)
             + sum(s.amount_cents - s.settled) over (partition by s.account_id order by s.received_at, s.idempotency_key),
           s.id, 'Payment beyond the invoice it named'
    from split s where s.amount_cents > s.settled
    returning 1
  )
  select (select count(*) from recorded)::integer, (select count(*) from split)::integer,
         (select count(*) from recorded where status = 'failed')::integer,
         coalesce((select sum(s.settled) from split s), 0)::bigint, coalesce((select sum(s.amount_cents - s.settled) from split s), 0)::bigint
  from (select (select count(*) from posted), (select count(*) from settled_invoices), (select count(*) from wallets)) as ran;

  -- Lines suspended for non-payment come back when nothing caused the suspension any more.
  perform private.restore_if_paid(org, a.id)
  from public.accounts a
  where a.organization_id = org and a.status = 'suspended'
    and a.id in (select b.account_id from pg_temp.payment_batch b where b.succeeded);
end;
$$;
comment on function public.record_payments_in_bulk(uuid) is 'Records the payments of the session''s payment_batch table at once (agents and services; bulk loads and migrations): checked as a whole first, then one statement per table. A succeeded payment settles the invoice it names, the rest goes to the wallet; lines suspended for non-payment are restored when paid. Returns the counts and cents.';
revoke all on function public.record_payments_in_bulk(uuid) from public, anon;
grant execute on function public.record_payments_in_bulk(uuid) to authenticated, service_role;

create or replace function public.refund_payment(organization_id uuid, payment_id uuid, amount_cents bigint, reason text default null)
returns public.payments
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := refund_payment.organization_id;
  payment public.payments;
  from_wallet bigint;
  left_to_refund bigint;
  transaction_id uuid := gen_random_uuid();
begin
  perform private.require_role(org, 'operator');
  select p.* into payment from public.payments p where p.organization_id = org and p.id = refund_payment.payment_id;
  if payment.id is null then
    raise exception 'there is no payment % in this organization', refund_payment.payment_id using errcode = 'P0002';
  end if;
  perform private.lock_account(org, payment.account_id);
  select p.* into payment from public.payments p where p.organization_id = org and p.id = refund_payment.payment_id for update;
  if payment.status <> 'succeeded' then
    raise exception 'payment % failed; there is nothing to refund', payment.id using errcode = 'P0001';
  end if;
  if refund_payment.amount_cents is null or refund_payment.amount_cents <= 0
     or refund_payment.amount_cents > payment.amount_cents - payment.refunded_cents then
    raise exception 'a refund of this payment must be between 1 and % cents, not %', payment.amount_cents - payment.refunded_cents,
      refund_payment.amount_cents using errcode = '22023';
  end if;

  -- First what of this payment still sits in the wallet, then its invoice settlements, latest first (they reopen).
  from_wallet := least(refund_payment.amount_cents, private.wallet_balance(org, payment.account_id),
    greatest(coalesce((select -sum(e.amount_cents) from public.ledger_entries e where e.organization_id = org and e.payment_id = payment.id
                        and e.ledger_account = 'wallet_liability'), 0), 0));
  left_to_refund := refund_payment.amount_cents - from_wallet;
  create temporary table if not exists refund_allocation (invoice_id uuid, amount bigint) on commit drop;
  truncate pg_temp.refund_allocation;
  insert into pg_temp.refund_allocation (invoice_id, amount)
  select s.invoice_id, least(s.settled, left_to_refund - (s.running - s.settled))
  from (
    select e.invoice_id, -sum(e.amount_cents) as settled, max(i.number) as number,
           sum(-sum(e.amount_cents)) over (order by max(i.number) desc) as running
    from public.ledger_entries e join public.invoices i on i.organization_id = org and i.id = e.invoice_id
    where e.organization_id = org and e.payment_id = payment.id and e.ledger_account = 'accounts_receivable'
    group by e.invoice_id having -sum(e.amount_cents) > 0
  ) s
  where left_to_refund - (s.running - s.settled) > 0;
  if (select coalesce(sum(a.amount), 0) from pg_temp.refund_allocation a) <> left_to_refund then
    raise exception 'payment % cannot be refunded by % cents: its credit was already spent from the wallet', payment.id, refund_payment.amount_cents
      using errcode = 'P0001';
  end if;

  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, payment_id)
  select org, transaction_id, 'refund', e.ledger_account, e.amount, payment.account_id, e.invoice_id, payment.id
  from (
    select 'cash'::public.ledger_account as ledger_account, -refund_payment.amount_cents as amount, null::uuid as invoice_id
    union all
    select 'wallet_liability', from_wallet, null where from_wallet > 0
    union all
    select 'accounts_receivable', a.amount, a.invoice_id from pg_temp.refund_allocation a
  ) e;
  if from_wallet > 0 then
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, payment_id, description)
    values (org, payment.account_id, 'refund', -from_wallet, private.wallet_balance(org, payment.account_id) - from_wallet, payment.id,
            coalesce(refund_payment.reason, 'Refund'));
  end if;
  update public.invoices i
     set amount_paid_cents = i.amount_paid_cents - a.amount,
         status = private.unsettled_status(i.due_on, org, current_date), updated_at = now()
    from pg_temp.refund_allocation a
   where i.organization_id = org and i.id = a.invoice_id;
  update public.payments p set refunded_cents = p.refunded_cents + refund_payment.amount_cents
   where p.organization_id = org and p.id = payment.id
  returning * into payment;
  return payment;
end;
$$;
comment on function public.refund_payment(uuid, uuid, bigint, text) is 'Refunds part or all of a payment (operators, services): first what of it is still in the wallet, then its invoice settlements, latest invoice first (they are owed again).';

create or replace function public.issue_credit_note(organization_id uuid, invoice_id uuid, amount_cents bigint, reason text)
returns public.credit_notes
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := issue_credit_note.organization_id;
  invoice public.invoices;
  note public.credit_notes;
  number bigint;
  prefix text;
  applied bigint;
  already bigint;
begin
  perform private.require_role(org, 'operator');
  if nullif(btrim(issue_credit_note.reason), '') is null then
    raise exception 'a credit note needs a reason' using errcode = '22023';
  end if;
  select i.* into invoice from public.invoices i where i.organization_id = org and i.id = issue_credit_note.invoice_id;
  if invoice.id is null then
    raise exception 'there is no invoice % in this organization', issue_credit_note.invoice_id using errcode = 'P0002';
  end if;
  perform private.lock_account(org, invoice.account_id);
  select i.* into invoice from public.invoices i where i.organization_id = org and i.id = issue_credit_note.invoice_id for update;
  select coalesce(sum(c.amount_cents), 0) into already from public.credit_notes c where c.organization_id = org and c.invoice_id = invoice.id;
  if issue_credit_note.amount_cents is null or issue_credit_note.amount_cents <= 0
     or issue_credit_note.amount_cents > invoice.total_cents - already then
    raise exception 'a credit note on invoice % must be between 1 and % cents, not %', invoice.display_number,
      greatest(invoice.total_cents - already, 0), issue_credit_note.amount_cents using errcode = '22023';
  end if;
  insert into public.billing_policies (organization_id) values (org) on conflict do nothing;
  update public.billing_policies p set next_credit_note_number = p.next_credit_note_number + 1
   where p.organization_id = org returning p.next_credit_note_number - 1, p.credit_note_prefix into number, prefix;

  applied := least(issue_credit_note.amount_cents,
                   greatest(invoice.total_cents - invoice.amount_paid_cents - invoice.amount_credited_cents - invoice.amount_written_off_cents, 0));
  insert into public.credit_notes (organization_id, number, display_number, invoice_id, account_id, amount_cents, reason)
  values (org, number, prefix || lpad(number::text, 6, '0'), invoice.id, invoice.account_id, issue_credit_note.amount_cents, issue_credit_note.reason)
  returning * into note;
  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, credit_note_id)
  select org, note.id, 'credit_note', e.ledger_account, e.amount, invoice.account_id, e.invoice_id, note.id
  from (
    select 'credits_issued'::public.ledger_account as ledger_account, issue_credit_note.amount_cents as amount, null::uuid as invoice_id
    union all
    select 'accounts_receivable', -applied, invoice.id where applied > 0
    union all
    select 'wallet_liability', -(issue_credit_note.amount_cents - applied), null where issue_credit_note.amount_cents > applied
  ) e;
  if applied > 0 then
    update public.invoices i
       set amount_credited_cents = i.amount_credited_cents + applied,
           status = case when i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents - applied <= 0
                         then 'paid' else i.status end,
           updated_at = now()
     where i.organization_id = org and i.id = invoice.id;
  end if;
  if issue_credit_note.amount_cents > applied then
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, credit_note_id, description)
    values (org, invoice.account_id, 'credit', issue_credit_note.amount_cents - applied,
            private.wallet_balance(org, invoice.account_id) + issue_credit_note.amount_cents - applied, note.id, issue_credit_note.reason);
  end if;
  perform private.restore_if_paid(org, invoice.account_id);
  return note;
end;
$$;
comment on function public.issue_credit_note(uuid, uuid, bigint, text) is 'Credits an issued invoice (operators, services), numbered gaplessly: reduces what is owed on it; what exceeds the amount owed goes to the account''s wallet.';

create or replace function private.write_off(organization_id uuid, invoice_id uuid, reason text)
returns public.invoices
language plpgsql
set search_path = ''
as $$
declare
  invoice public.invoices;
  outstanding bigint;
begin
  select i.* into invoice from public.invoices i where i.organization_id = write_off.organization_id and i.id = write_off.invoice_id for update;
  if invoice.id is null then
    raise exception 'there is no invoice % in this organization', write_off.invoice_id using errcode = 'P0002';
  end if;
  outstanding := invoice.total_cents - invoice.amount_paid_cents - invoice.amount_credited_cents - invoice.amount_written_off_cents;
  if outstanding <= 0 or invoice.status not in ('open', 'past_due') then
    raise exception 'invoice % has nothing owed to write off (it is %)', invoice.display_number, invoice.status using errcode = 'P0001';
  end if;
  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id)
  select invoice.organization_id, t.id, 'write_off', e.ledger_account, e.amount, invoice.account_id, e.invoice_id
  from (select gen_random_uuid() as id) t
  cross join (values ('bad_debt'::public.ledger_account, outstanding, null::uuid),
                     ('accounts_receivable'::public.ledger_account, -outstanding, invoice.id)) e (ledger_account, amount, invoice_id);
  update public.invoices i set amount_written_off_cents = i.amount_written_off_cents + outstanding, status = 'written_off', updated_at = now()
   where i.organization_id = invoice.organization_id and i.id = invoice.id
  returning * into invoice;
  return invoice;
end;
$$;
comment on function private.write_off(uuid, uuid, text) is 'Writes off what is owed on an invoice: bad debt against the receivable; the invoice becomes written_off.';

create or replace function public.write_off_invoice(organization_id uuid, invoice_id uuid, reason text)
returns public.invoices
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(write_off_invoice.organization_id, 'admin');
  if nullif(btrim(write_off_invoice.reason), '') is null then
    raise exception 'a write-off needs a reason' using errcode = '22023';
  end if;
  return private.write_off(write_off_invoice.organization_id, write_off_invoice.invoice_id, write_off_invoice.reason);
end;
$$;
comment on function public.write_off_invoice(uuid, uuid, text) is 'Writes off what is still owed on an invoice (admins, services); dunning does this itself at the end of its policy.';

create or replace function public.top_up_wallet(
  organization_id uuid, account_id uuid, amount_cents bigint, idempotency_key text, description text default 'Top-up')
returns public.wallet_transactions
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := top_up_wallet.organization_id;
  holder public.accounts;
  entry public.wallet_transactions;
  open_invoices uuid[];
begin
  perform private.require_role(org, 'agent');
  if top_up_wallet.amount_cents is null or top_up_wallet.amount_cents <= 0 then
    raise exception 'a top-up must be a positive number of cents, not %', top_up_wallet.amount_cents using errcode = '22023';
  end if;
  if nullif(btrim(top_up_wallet.idempotency_key), '') is null then
    raise exception 'a top-up needs an idempotency key' using errcode = '22023',
      hint = 'Use the payment''s id, so a repeated top-up credits once.';
  end if;
  holder := private.lock_account(org, top_up_wallet.account_id);
  select w.* into entry from public.wallet_transactions w
   where w.organization_id = org and w.account_id = holder.id and w.idempotency_key = top_up_wallet.idempotency_key;
  if entry.id is not null then
    if entry.kind <> 'top_up' or entry.amount_cents <> top_up_wallet.amount_cents then
      raise exception 'idempotency key % was already used for a different wallet movement', top_up_wallet.idempotency_key
        using errcode = '22023';
    end if;
    return entry;
  end if;
  insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, idempotency_key, description)
  values (org, holder.id, 'top_up', top_up_wallet.amount_cents, private.wallet_balance(org, holder.id) + top_up_wallet.amount_cents,
          top_up_wallet.idempotency_key, top_up_wallet.description)
  returning * into entry;
  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id)
  values (org, entry.id, 'wallet', 'cash', top_up_wallet.amount_cents, holder.id),
         (org, entry.id, 'wallet', 'wallet_liability', -top_up_wallet.amount_cents, holder.id);
  if coalesce((select p.apply_wallet_to_invoices from public.billing_policies p where p.organization_id = org), true) then
    open_invoices := array(select i.id from public.invoices i
                            where i.organization_id = org and i.account_id = holder.id and i.status in ('open', 'past_due'));
    if cardinality(open_invoices) > 0 then
      perform private.apply_wallets(org, open_invoices);
      perform private.restore_if_paid(org, holder.id);
    end if;
  end if;
  return entry;
end;
$$;
comment on function public.top_up_wallet(uuid, uuid, bigint, text, text) is 'Adds money to an account''s prepaid wallet (agents, services), once per idempotency key: a repeated top-up returns the first and credits nothing. Open invoices are paid from the wallet when the policy says so.';

revoke all on function private.lock_account(uuid, uuid), private.wallet_balance(uuid, uuid), private.unsettled_status(date, uuid, date),
  private.apply_wallets(uuid, uuid[]), private.write_off(uuid, uuid, text) from public;
revoke all on function public.record_payment(uuid, uuid, bigint, text, text, text, text, boolean, text, text, timestamptz, uuid),
  public.refund_payment(uuid, uuid, bigint, text), public.issue_credit_note(uuid, uuid, bigint, text),
  public.write_off_invoice(uuid, uuid, text), public.top_up_wallet(uuid, uuid, bigint, text, text) from public, anon;
grant execute on function public.record_payment(uuid, uuid, bigint, text, text, text, text, boolean, text, text, timestamptz, uuid),
  public.refund_payment(uuid, uuid, bigint, text), public.issue_credit_note(uuid, uuid, bigint, text),
  public.write_off_invoice(uuid, uuid, text), public.top_up_wallet(uuid, uuid, bigint, text, text) to authenticated, service_role;

-- >>> sql/40_billing/35_autopay.sql (sha256 6e30f46dd6f9b2c1ce3a2eeea98647962e29e463f9048a23bbc8ef7d03e34c8d)
-- Autopay: charging an account's saved payment method. The database decides what to charge and
-- when; the payment worker of `wingtel serve` (Sources/WingtelFunctions/Payments) only talks to
-- Stripe and Zift.
--   queue_autopay_charges  each open invoice of an autopay account gets a charge when it is issued,
--                          and again on the policy's retry days after a decline (daily job `autopay`)
--   charge_payment_method  staff charge a saved method now (a phone payment on file)
--   claim_payment_charges  the worker takes due charges under a lease (SKIP LOCKED); charges whose
--                          invoice was settled meanwhile, whose method was removed or whose account
--                          left autopay are canceled first
--   finish_payment_charge  the outcome: succeeded → a payment (record_payment, settling the invoice);
--                          declined → a failed attempt (dunning and churn see it); pending → waits for
--                          the provider's webhook; retry → sent again later with the same key, dead
--                          after max_sends
-- The webhooks settle a charge too (handle_stripe_event, handle_zift_event): whichever of the worker
-- and the webhook comes first records the payment, the other finds it recorded.

-- The caller may manage the account's payment methods: staff (agent and up), or the account's own
-- self-service customer.
create or replace function private.require_account_manager(organization_id uuid, account_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if require_account_manager.account_id = any (private.customer_account_ids())
     and exists (select 1 from public.accounts a where a.organization_id = require_account_manager.organization_id
                 and a.id = require_account_manager.account_id) then
    return;
  end if;
  perform private.require_role(require_account_manager.organization_id, 'agent');
end;
$$;
comment on function private.require_account_manager(uuid, uuid) is 'Guard: the caller is staff of the organization (agent and up), a service, or the account''s own self-service customer.';

-- What card-data scanners look for: a run of 13 to 19 digits (spaces or dashes between them
-- allowed) that passes the Luhn check. Provider tokens that keep a card's shape are made to fail
-- Luhn, so they pass.
create or replace function private.looks_like_card_number(value text)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  run text;
begin
  for run in select regexp_replace(m[1], '[ -]', '', 'g') from regexp_matches(coalesce(value, ''), '([0-9](?:[0-9]|[ -](?=[0-9])){12,})', 'g') as m
  loop
    if length(run) between 13 and 19 and public.luhn_valid(run) then
      return true;
    end if;
  end loop;
  return false;
end;
$$;
comment on function private.looks_like_card_number(text) is 'True when the text holds a run of 13 to 19 digits (spaces or dashes between them allowed) that passes the Luhn check: what a card number looks like.';

create or replace function private.validate_payment_method()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if private.looks_like_card_number(new.token) or private.looks_like_card_number(new.provider_customer_id) then
    raise exception 'that looks like a card number; Wingtel stores only the provider''s token' using errcode = '23514',
      hint = 'Collect the card with Stripe Elements or Zift''s hosted form and save the token it returns (pm_… for Stripe).';
  end if;
  return new;
end;
$$;
comment on function private.validate_payment_method() is 'Trigger on payment_methods: refuses a token (or customer id) that holds a card number, whoever writes it.';
create or replace trigger payment_methods_validate before insert or update of token, provider_customer_id on public.payment_methods
  for each row execute function private.validate_payment_method();

create or replace function public.add_payment_method(
  organization_id uuid,
  account_id uuid,
  provider text,
  token text,
  provider_customer_id text default null,
  brand text default null,
  last4 text default null,
  exp_month integer default null,
  exp_year integer default null,
  make_default boolean default true)
returns public.payment_methods
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := add_payment_method.organization_id;
  method public.payment_methods;
begin
  perform private.require_account_manager(org, add_payment_method.account_id);
  perform private.lock_account(org, add_payment_method.account_id);
  if add_payment_method.provider is null or add_payment_method.provider not in ('stripe', 'zift') then
    raise exception 'unknown payment provider %', coalesce(add_payment_method.provider, 'null') using errcode = '22023',
      hint = 'Saved payment methods are Stripe PaymentMethods (stripe) or Zift stored-card tokens (zift).';
  end if;
  if private.looks_like_card_number(add_payment_method.token) then
    raise exception 'that looks like a card number; Wingtel stores only the provider''s token' using errcode = '22023',
      hint = 'Collect the card with Stripe Elements or Zift''s hosted form and pass the token it returns (pm_… for Stripe).';
  end if;
  if add_payment_method.provider = 'stripe' and coalesce(add_payment_method.provider_customer_id, '') !~ '^cus_[A-Za-z0-9]+$' then
    raise exception 'a Stripe payment method needs the Stripe customer (cus_…) it is attached to' using errcode = '22023',
      hint = 'Off-session charges name the customer and the payment method.';
  end if;

  select m.* into method from public.payment_methods m
   where m.organization_id = org and m.provider = add_payment_method.provider and m.token = add_payment_method.token;
  if method.id is not null and method.account_id <> add_payment_method.account_id then
    raise exception 'this % token is saved for another account', add_payment_method.provider using errcode = '23505';
  end if;
  if add_payment_method.make_default then
    update public.payment_methods m set is_default = false
     where m.organization_id = org and m.account_id = add_payment_method.account_id and m.is_default
       and m.id is distinct from method.id;
  end if;
  if method.id is null then
    insert into public.payment_methods (organization_id, account_id, provider, token, provider_customer_id, brand, last4, exp_month,
                                        exp_year, is_default)
    values (org, add_payment_method.account_id, add_payment_method.provider, add_payment_method.token,
            add_payment_method.provider_customer_id, add_payment_method.brand, add_payment_method.last4, add_payment_method.exp_month,
            add_payment_method.exp_year, add_payment_method.make_default)
    returning * into method;
  else
    -- The same token again (a repeated call, or a method saved again after removal): one row.
    update public.payment_methods m
       set status = 'active', removed_at = null, is_default = m.is_default or add_payment_method.make_default,
           provider_customer_id = coalesce(add_payment_method.provider_customer_id, m.provider_customer_id),
           brand = coalesce(add_payment_method.brand, m.brand), last4 = coalesce(add_payment_method.last4, m.last4),
           exp_month = coalesce(add_payment_method.exp_month, m.exp_month), exp_year = coalesce(add_payment_method.exp_year, m.exp_year)
     where m.organization_id = org and m.id = method.id
    returning * into method;
  end if;
  return method;
end;
$$;
comment on function public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean) is 'Saves a payment method token (Stripe pm_… with its customer, or a Zift token) for an account, by default as the method autopay charges; the same token again is the same method. Refuses anything that holds a card number (a Luhn-valid run of 13 to 19 digits). Staff (agent and up) or the account''s customer.';

create or replace function public.remove_payment_method(organization_id uuid, payment_method_id uuid)
returns public.payment_methods
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := remove_payment_method.organization_id;
  method public.payment_methods;
begin
  select m.* into method from public.payment_methods m where m.organization_id = org and m.id = remove_payment_method.payment_method_id;
  if method.id is null then
    raise exception 'there is no payment method % in this organization', remove_payment_method.payment_method_id using errcode = 'P0002';
  end if;
  perform private.require_account_manager(org, method.account_id);
  perform private.lock_account(org, method.account_id);
  if method.status = 'removed' then
    return method;
  end if;
  -- Charges not yet sent are canceled; one already at the provider finishes there (its webhook settles it).
  update public.payment_charges c
     set status = 'canceled', last_error = 'the payment method was removed', finished_at = now(), lease_until = null
   where c.organization_id = org and c.payment_method_id = method.id and c.status = 'pending' and c.sends = 0
     and (c.lease_until is null or c.lease_until < now());
  update public.payment_methods m set status = 'removed', removed_at = now(), is_default = false
   where m.organization_id = org and m.id = method.id
  returning * into method;
  -- Without a default method there is nothing for autopay to charge: it goes off (visibly) rather
  -- than staying on and silently charging nothing.
  update public.accounts a set autopay = false
   where a.organization_id = org and a.id = method.account_id and a.autopay
     and not exists (select 1 from public.payment_methods m
                     where m.organization_id = org and m.account_id = a.id and m.is_default and m.status = 'active');
  return method;
end;
$$;
comment on function public.remove_payment_method(uuid, uuid) is 'Removes a saved payment method (kept for history as removed); charges of it not yet sent are canceled, and autopay is turned off when no default method is left. Staff (agent and up) or the account''s customer.';

create or replace function public.set_autopay(organization_id uuid, account_id uuid, enabled boolean)
returns public.accounts
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := set_autopay.organization_id;
  payer public.accounts;
begin
  perform private.require_account_manager(org, set_autopay.account_id);
  payer := private.lock_account(org, set_autopay.account_id);
  if set_autopay.enabled is null then
    raise exception 'say whether autopay is on (true) or off (false)' using errcode = '22023';
  end if;
  if set_autopay.enabled and not exists (
       select 1 from public.payment_methods m
       where m.organization_id = org and m.account_id = payer.id and m.is_default and m.status = 'active') then
    raise exception 'account % has no default payment method to charge', payer.id using errcode = 'P0001',
      hint = 'Save one first with add_payment_method.';
  end if;
  if payer.autopay is distinct from set_autopay.enabled then
    update public.accounts a set autopay = set_autopay.enabled where a.organization_id = org and a.id = payer.id returning * into payer;
  end if;
  return payer;
end;
$$;
comment on function public.set_autopay(uuid, uuid, boolean) is 'Turns autopay on (needs a default payment method) or off for an account. Staff (agent and up) or the account''s customer.';

create or replace function public.queue_autopay_charges(organization_id uuid, as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := queue_autopay_charges.organization_id;
  queued integer;
  today date;
  zone text;
begin
  perform private.require_role(org, 'operator');
  select o.time_zone, (queue_autopay_charges.as_of at time zone o.time_zone)::date into zone, today
  from public.organizations o where o.id = org;
  if today is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  -- Each issued, unsettled invoice of an autopay account with a default method, with no charge in
  -- flight: the first attempt at once; after the n-th decline (or dead charge) the next one
  -- autopay_retry_days[n] days later, while n <= cardinality(autopay_retry_days). An attempt
  -- canceled before it was sent (the card was replaced) is simply made again. A succeeded
  -- autopay charge is never repeated by itself (a refund reopens the invoice: staff decide).
  with due as (
    select i.organization_id, i.account_id, i.id as invoice_id, m.id as method_id, m.provider, i.currency,
           i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding,
           coalesce(l.attempt, 0) + 1 as attempt
    from public.invoices i
    join public.accounts a on a.organization_id = i.organization_id and a.id = i.account_id and a.autopay
    join public.payment_methods m on m.organization_id = i.organization_id and m.account_id = i.account_id and m.is_default
                                 and m.status = 'active'
    left join public.billing_policies p on p.organization_id = i.organization_id
    left join lateral (
      select c.attempt, c.status, c.finished_at,
             (select count(*) from public.payment_charges f
              where f.organization_id = i.organization_id and f.invoice_id = i.id and f.origin = 'autopay'
                and f.status in ('declined', 'dead'))::integer as failures
      from public.payment_charges c
      where c.organization_id = i.organization_id and c.invoice_id = i.id and c.origin = 'autopay'
      order by c.attempt desc
      limit 1
    ) l on true
    where i.organization_id = org and i.status in ('open', 'past_due') and i.issued_on <= today
      and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
      and not exists (select 1 from public.payment_charges b
                      where b.organization_id = i.organization_id and b.invoice_id = i.id and b.status in ('pending', 'awaiting_confirmation'))
      and (l.attempt is null
           or l.status = 'canceled'
           or (l.status in ('declined', 'dead')
               and l.failures <= cardinality(coalesce(p.autopay_retry_days, '{3,5,7}'::integer[]))
               and (l.finished_at at time zone zone)::date + (coalesce(p.autopay_retry_days, '{3,5,7}'::integer[]))[l.failures] <= today))
  )
  insert into public.payment_charges (organization_id, account_id, invoice_id, payment_method_id, provider, origin, amount_cents, currency,
                                      attempt, idempotency_key)
  select d.organization_id, d.account_id, d.invoice_id, d.method_id, d.provider, 'autopay', d.outstanding, d.currency, d.attempt,
         format('autopay:%s:%s', d.invoice_id, d.attempt)
  from due d
  on conflict do nothing;
  get diagnostics queued = row_count;
  return queued;
end;
$$;
comment on function public.queue_autopay_charges(uuid, timestamptz) is 'Queues an autopay charge for every issued, unsettled invoice of the organization''s autopay accounts: the first attempt at once, retries on the policy''s autopay_retry_days after a decline. Re-running queues nothing new. Returns how many were queued (operators; the scheduler''s daily autopay job).';

create or replace function public.charge_payment_method(
  organization_id uuid,
  account_id uuid,
  amount_cents bigint default null,
  invoice_id uuid default null,
  payment_method_id uuid default null,
  idempotency_key text default null)
returns public.payment_charges
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := charge_payment_method.organization_id;
  payer public.accounts;
  method public.payment_methods;
  charge public.payment_charges;
  owed bigint;
  key text := coalesce(nullif(btrim(charge_payment_method.idempotency_key), ''), 'staff:' || gen_random_uuid());
begin
  perform private.require_role(org, 'agent');
  payer := private.lock_account(org, charge_payment_method.account_id);
  select c.* into charge from public.payment_charges c where c.organization_id = org and c.idempotency_key = key;
  if charge.id is not null then
    if charge.account_id <> payer.id then
      raise exception 'idempotency key % was already used for another account''s charge', key using errcode = '22023';
    end if;
    return charge;
  end if;
  select m.* into method from public.payment_methods m
   where m.organization_id = org and m.account_id = payer.id and m.status = 'active'
     and (m.id = charge_payment_method.payment_method_id or (charge_payment_method.payment_method_id is null and m.is_default));
  if method.id is null then
    raise exception 'account % has no % payment method to charge', payer.id,
      case when charge_payment_method.payment_method_id is null then 'default' else 'such active' end using errcode = 'P0001',
      hint = 'Save one with add_payment_method.';
  end if;
  if charge_payment_method.invoice_id is not null then
    select i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents into owed
    from public.invoices i
    where i.organization_id = org and i.id = charge_payment_method.invoice_id and i.account_id = payer.id and i.status in ('open', 'past_due');
    if owed is null or owed <= 0 then
      raise exception 'invoice % of this account has nothing left to pay', charge_payment_method.invoice_id using errcode = 'P0001';
    end if;
  else
    select coalesce(sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents), 0) into owed
    from public.invoices i where i.organization_id = org and i.account_id = payer.id and i.status in ('open', 'past_due');
  end if;
  if coalesce(charge_payment_method.amount_cents, owed) <= 0 then
    raise exception 'a charge must be a positive number of cents (the account owes %)', owed using errcode = '22023',
      hint = 'Give amount_cents to charge an account that owes nothing (the payment goes to its wallet).';
  end if;
  insert into public.payment_charges (organization_id, account_id, invoice_id, payment_method_id, provider, origin, amount_cents, currency,
                                      idempotency_key)
  select org, payer.id, charge_payment_method.invoice_id, method.id, method.provider, 'staff',
         coalesce(charge_payment_method.amount_cents, owed), o.currency, key
  from public.organizations o where o.id = org
  returning * into charge;
  return charge;
end;
$$;
comment on function public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text) is 'Queues a charge of a saved payment method (the default unless one is named): the invoice''s outstanding amount, everything the account owes, or amount_cents. The payment worker sends it; once per idempotency key (agents and up).';

create or replace function private.notify_payment_charges()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('wingtel_payment_charges', '');
  return null;
end;
$$;
comment on function private.notify_payment_charges() is 'Statement trigger on payment_charges: NOTIFY wingtel_payment_charges so the payment worker wakes for a queued charge.';
create or replace trigger payment_charges_notify after insert on public.payment_charges
  for each statement execute function private.notify_payment_charges();
create or replace trigger payment_charges_touch before update on public.payment_charges
  for each row execute function private.touch_updated_at();
create or replace trigger payment_methods_touch before update on public.payment_methods
  for each row execute function private.touch_updated_at();

create or replace function public.claim_payment_charges(
  worker text, max_count integer default 16, lease interval default '60 seconds', providers text[] default '{stripe,zift}')
returns table (
  organization_id uuid,
  id uuid,
  account_id uuid,
  invoice_id uuid,
  provider text,
  token text,
  provider_customer_id text,
  amount_cents bigint,
  currency char(3),
  idempotency_key text,
  sends integer,
  description text,
  provider_payment_id text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Not worth sending any more: the invoice was settled another way, the method was removed, or
  -- the account left autopay. A charge already sent once keeps its amount (the provider bound it
  -- to the idempotency key); one never sent is lowered to what is still owed.
  -- (Only charges never sent: one sent before may have reached the provider, and is sent again
  -- with its key to learn the answer.)
  update public.payment_charges c
     set status = 'canceled', finished_at = now(), lease_until = null,
         last_error = case when m.status <> 'active' then 'the payment method was removed'
                           when c.origin = 'autopay' and not a.autopay then 'autopay was turned off'
                           else 'the invoice was settled before the charge was sent' end
    from public.payment_methods m, public.accounts a
   where c.status = 'pending' and c.sends = 0 and c.next_attempt_at <= now() and (c.lease_until is null or c.lease_until < now())
     and m.organization_id = c.organization_id and m.id = c.payment_method_id
     and a.organization_id = c.organization_id and a.id = c.account_id
     and (m.status <> 'active' or (c.origin = 'autopay' and not a.autopay)
          or exists (select 1 from public.invoices i
                     where i.organization_id = c.organization_id and i.id = c.invoice_id
                       and (i.status not in ('open', 'past_due')
                            or i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents <= 0)));
  update public.payment_charges c
     set amount_cents = i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents
    from public.invoices i
   where c.status = 'pending' and c.sends = 0 and c.next_attempt_at <= now() and (c.lease_until is null or c.lease_until < now())
     and i.organization_id = c.organization_id and i.id = c.invoice_id
     and c.amount_cents > i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents;
  -- Due too: charges the provider is still working on whose next check has come (the webhook
  -- that settles them may never arrive); the worker asks the provider for their state.
  return query
  with ready as (
    select c.organization_id, c.id from public.payment_charges c
    where c.status in ('pending', 'awaiting_confirmation') and c.next_attempt_at <= now()
      and (c.lease_until is null or c.lease_until < now())
      and c.provider = any (claim_payment_charges.providers)
    order by c.next_attempt_at
    limit greatest(claim_payment_charges.max_count, 0)
    for update skip locked
  ), claimed as (
    update public.payment_charges c
       set locked_by = claim_payment_charges.worker, lease_until = now() + claim_payment_charges.lease, sends = c.sends + 1
      from ready r
     where c.organization_id = r.organization_id and c.id = r.id
    returning c.*
  )
  select c.organization_id, c.id, c.account_id, c.invoice_id, c.provider, m.token, m.provider_customer_id, c.amount_cents, c.currency,
         c.idempotency_key, c.sends,
         coalesce(o.name || ' invoice ' || i.display_number, o.name || ' payment'),
         case when c.status = 'awaiting_confirmation' then c.provider_payment_id end
  from claimed c
  join public.payment_methods m on m.organization_id = c.organization_id and m.id = c.payment_method_id
  join public.organizations o on o.id = c.organization_id
  left join public.invoices i on i.organization_id = c.organization_id and i.id = c.invoice_id;
end;
$$;
comment on function public.claim_payment_charges(text, integer, interval, text[]) is 'Takes up to max_count due charges of the given providers for one payment worker under a lease (SKIP LOCKED), with the token and customer to charge; cancels those no longer worth sending first. A charge whose worker died is claimed again when its lease runs out (same idempotency key). A charge awaiting confirmation whose next check has come is returned with its provider_payment_id: the worker asks the provider for its state instead of charging.';

-- A charge the provider is still working on: check again in 30 minutes, doubling up to a day;
-- after 14 days without an answer it is dead for staff to look at (the invoice stays owed).
create or replace function private.await_confirmation(charge public.payment_charges, provider_payment_id text, error text)
returns public.payment_charges
language plpgsql
set search_path = ''
as $$
declare
  result public.payment_charges;
begin
  if charge.created_at < now() - interval '14 days' then
    update public.payment_charges c
       set status = 'dead', lease_until = null, finished_at = now(),
           provider_payment_id = coalesce(await_confirmation.provider_payment_id, c.provider_payment_id),
           last_error = 'the provider has not confirmed this payment in 14 days: look it up in its dashboard'
     where c.organization_id = charge.organization_id and c.id = charge.id returning * into result;
  else
    update public.payment_charges c
       set status = 'awaiting_confirmation', lease_until = null,
           provider_payment_id = coalesce(await_confirmation.provider_payment_id, c.provider_payment_id),
           last_error = coalesce(await_confirmation.error, c.last_error),
           next_attempt_at = now() + least(interval '30 minutes' * power(2, greatest(charge.sends - 1, 0)), interval '24 hours')
     where c.organization_id = charge.organization_id and c.id = charge.id returning * into result;
  end if;
  return result;
end;
$$;
comment on function private.await_confirmation(public.payment_charges, text, text) is 'Keeps a charge awaiting the provider''s confirmation, to be checked again in 30 minutes doubling up to a day; dead after 14 days without one.';

create or replace function public.finish_payment_charge(
  organization_id uuid,
  charge_id uuid,
  outcome text,
  provider_payment_id text default null,
  failure_code text default null,
  failure_message text default null,
  retry_after interval default null)
returns public.payment_charges
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := finish_payment_charge.organization_id;
  charge public.payment_charges;
  payment public.payments;
begin
  perform private.require_role(org, 'operator');
  select c.* into charge from public.payment_charges c where c.organization_id = org and c.id = finish_payment_charge.charge_id for update;
  if charge.id is null then
    raise exception 'there is no payment charge % in this organization', finish_payment_charge.charge_id using errcode = 'P0002';
  end if;
  if finish_payment_charge.outcome is null or finish_payment_charge.outcome not in ('succeeded', 'declined', 'pending', 'retry') then
    raise exception 'unknown charge outcome %', coalesce(finish_payment_charge.outcome, 'null') using errcode = '22023',
      hint = 'One of succeeded, declined, pending (the provider finishes later), retry (not charged; send again).';
  end if;
  -- Already settled (by the webhook, or an earlier answer): the same charge is not settled twice.
  if charge.status not in ('pending', 'awaiting_confirmation') then
    return charge;
  end if;
  if finish_payment_charge.outcome in ('succeeded', 'pending') and nullif(coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id), '') is null then
    raise exception 'a charge the provider took needs the provider''s payment id' using errcode = '22023';
  end if;

  case finish_payment_charge.outcome
    when 'succeeded' then
      payment := public.record_payment(org, charge.account_id, charge.amount_cents, charge.idempotency_key, 'card', charge.provider,
        coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id), true, null, null, now(), charge.invoice_id);
      update public.payment_charges c
         set status = 'succeeded', payment_id = payment.id, provider_payment_id = payment.provider_payment_id,
             lease_until = null, finished_at = now(), last_error = null
       where c.organization_id = org and c.id = charge.id returning * into charge;
    when 'declined' then
      payment := public.record_payment(org, charge.account_id, charge.amount_cents, charge.idempotency_key || ':declined', 'card',
        charge.provider, 'failed:' || coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id, charge.idempotency_key), false,
        coalesce(nullif(finish_payment_charge.failure_code, ''), 'declined'), finish_payment_charge.failure_message, now());
      update public.payment_charges c
         set status = 'declined', payment_id = payment.id,
             provider_payment_id = coalesce(finish_payment_charge.provider_payment_id, c.provider_payment_id),
             failure_code = payment.failure_code, failure_message = payment.failure_message, lease_until = null, finished_at = now()
       where c.organization_id = org and c.id = charge.id returning * into charge;
    when 'pending' then
      charge := private.await_confirmation(charge, finish_payment_charge.provider_payment_id, null);
    else
      if charge.status = 'awaiting_confirmation' then
        -- The provider has the payment; not knowing its state now is no reason to give up on it.
        charge := private.await_confirmation(charge, null,
          coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'the provider could not be asked'));
      elsif charge.sends >= charge.max_sends then
        update public.payment_charges c
           set status = 'dead', lease_until = null, finished_at = now(),
               last_error = coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'not charged')
         where c.organization_id = org and c.id = charge.id returning * into charge;
      else
        -- Backoff 2^sends seconds (at most an hour) with ±50 % jitter, or the provider's Retry-After if longer.
        update public.payment_charges c
           set lease_until = null,
               last_error = coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'not charged'),
               next_attempt_at = now() + greatest(coalesce(finish_payment_charge.retry_after, interval '0'),
                                                  least(power(2, charge.sends), 3600) * (0.5 + random()) * interval '1 second')
         where c.organization_id = org and c.id = charge.id returning * into charge;
      end if;
  end case;
  return charge;
end;
$$;
comment on function public.finish_payment_charge(uuid, uuid, text, text, text, text, interval) is 'The outcome of sending a charge: succeeded (a payment, settling its invoice), declined (a failed attempt for dunning; the next attempt follows the retry days), pending (the provider finishes it: its webhook settles it, or the worker asks again later, for up to 14 days), retry (not charged: sent again with the same key after a backoff or Retry-After; dead after max_sends; for a charge awaiting confirmation, asked again later). Settling a charge twice changes nothing (services and operators).';

-- The charge a provider's payment belongs to: by the provider's payment id, else by the charge id
-- Wingtel sent with it (Stripe metadata.wingtel_charge_id, Zift userDefinedField2).
create or replace function private.provider_charge(provider text, provider_payment_id text, charge_id uuid)
returns public.payment_charges
language sql
stable
security definer
set search_path = ''
as $$
  select c.* from public.payment_charges c
  where (c.provider = provider_charge.provider and c.provider_payment_id = provider_charge.provider_payment_id)
     or (c.id = provider_charge.charge_id and c.provider = provider_charge.provider)
  order by (c.provider_payment_id = provider_charge.provider_payment_id) desc nulls last
  limit 1
$$;
comment on function private.provider_charge(text, text, uuid) is 'The payment charge a provider''s payment came from (by its payment id, else the charge id sent with it); null fields when it is not Wingtel''s.';

revoke all on function private.looks_like_card_number(text), private.validate_payment_method(), private.require_account_manager(uuid, uuid), public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean),
  public.remove_payment_method(uuid, uuid), public.set_autopay(uuid, uuid, boolean), public.queue_autopay_charges(uuid, timestamptz),
  public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text), private.notify_payment_charges(),
  public.claim_payment_charges(text, integer, interval, text[]), public.finish_payment_charge(uuid, uuid, text, text, text, text, interval),
  private.provider_charge(text, text, uuid), private.await_confirmation(public.payment_charges, text, text) from public, anon, authenticated;
grant execute on function public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean),
  public.remove_payment_method(uuid, uuid), public.set_autopay(uuid, uuid, boolean), public.queue_autopay_charges(uuid, timestamptz),
  public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text) to authenticated, service_role;
grant execute on function public.claim_payment_charges(text, integer, interval, text[]),
  public.finish_payment_charge(uuid, uuid, text, text, text, text, interval) to service_role;

-- Who sees them: staff read their organization's methods and charges, customers their own account's.
revoke all on public.payment_methods, public.payment_charges from anon, authenticated;
grant select on public.payment_methods, public.payment_charges to authenticated;
grant all on public.payment_methods, public.payment_charges to service_role;
grant update (autopay_retry_days) on public.billing_policies to authenticated;

drop policy if exists "Members and the customer can view payment methods" on public.payment_methods;
create policy "Members and the customer can view payment methods" on public.payment_methods for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Members and the customer can view payment charges" on public.payment_charges;
create policy "Members and the customer can view payment charges" on public.payment_charges for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

select audit.enable('public.payment_methods', 'billing');
select audit.enable('public.payment_charges', 'billing');

-- >>> sql/50_functions/20_stripe.sql (sha256 77b99155899d415bbe5e30f5c92458cbc75b8dcd711f8feeb19ad68cf80d9c8b)
-- Stripe events (POST /functions/v1/stripe-webhook), after the server checked Stripe-Signature.
-- Stripe delivers at least once and in any order, so each event is recorded once and acts by
-- comparing state, not by trusting order: a refund applies the difference between the charge's
-- amount_refunded and what Wingtel has refunded so far; a payment is one payment whether
-- payment_intent.succeeded or invoice.paid tells it first.
--
-- Which account: metadata.wingtel_account_id (with wingtel_organization_id) on the object —
-- what Wingtel puts on the Stripe objects it creates — else the account whose
-- stripe_customer_id is the object's customer.

create or replace function private.stripe_account(object jsonb)
returns public.accounts
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  meta jsonb := case when jsonb_typeof(object -> 'metadata') = 'object' then object -> 'metadata' else '{}' end;
  meta_account uuid := private.try_uuid(meta ->> 'wingtel_account_id');
  meta_organization uuid := private.try_uuid(meta ->> 'wingtel_organization_id');
  customer text := case when object ->> 'object' = 'customer' then object ->> 'id'
                        when jsonb_typeof(object -> 'customer') = 'string' then object ->> 'customer'
                        else object -> 'customer' ->> 'id' end;
  found_account public.accounts;
begin
  if meta_account is not null then
    select a.* into found_account from public.accounts a
     where a.id = meta_account and (meta_organization is null or a.organization_id = meta_organization);
  end if;
  if found_account.id is null and customer is not null then
    select a.* into found_account from public.accounts a where a.stripe_customer_id = customer;
  end if;
  return found_account;
end;
$$;
comment on function private.stripe_account(jsonb) is 'The account a Stripe object belongs to: metadata.wingtel_account_id first, then the customer id; null fields when none.';

create or replace function public.handle_stripe_event(event jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  event_id text := event ->> 'id';
  event_type text := event ->> 'type';
  object jsonb := event -> 'data' -> 'object';
  account public.accounts;
  payment public.payments;
  charge public.payment_charges;
  amount bigint;
  intent text;
  refunded bigint;
  failure_code text;
  failure_message text;
  occurred timestamptz;
begin
  if jsonb_typeof(event) is distinct from 'object' or event_id is null or event_type is null
     or jsonb_typeof(object) is distinct from 'object' then
    raise exception 'not a Stripe event: id, type and data.object are required' using errcode = '22023';
  end if;
  if not private.receive_event('stripe', event_id, event_type, event, request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  if event_type not in ('payment_intent.succeeded', 'payment_intent.payment_failed', 'invoice.paid', 'invoice.payment_succeeded',
                        'invoice.payment_failed', 'charge.refunded', 'charge.dispute.created', 'customer.created', 'customer.updated',
                        'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted') then
    return private.finish_event('stripe', event_id, null, 'ignored', 'Wingtel does not act on ' || event_type);
  end if;
  account := private.stripe_account(object);
  if account.id is null then
    return private.finish_event('stripe', event_id, null, 'unmatched', 'no account has this Stripe customer or metadata');
  end if;
  occurred := coalesce(to_timestamp((event ->> 'created')::double precision), now());

  case
    when event_type in ('payment_intent.succeeded', 'invoice.paid', 'invoice.payment_succeeded') then
      if event_type = 'payment_intent.succeeded' then
        amount := (object ->> 'amount_received')::bigint;
        intent := object ->> 'id';
      else
        amount := (object ->> 'amount_paid')::bigint;
        intent := coalesce(object ->> 'payment_intent', object ->> 'charge', object ->> 'id');
      end if;
      if coalesce(amount, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'nothing was paid');
      end if;
      -- A charge Wingtel sent (autopay, or staff charging a saved card): the charge records it, once,
      -- whether this event or the payment worker's answer comes first.
      charge := private.provider_charge('stripe', intent, private.try_uuid(object -> 'metadata' ->> 'wingtel_charge_id'));
      if charge.id is not null and charge.organization_id = account.organization_id and charge.status in ('pending', 'awaiting_confirmation', 'succeeded') then
        charge := public.finish_payment_charge(charge.organization_id, charge.id, 'succeeded', intent);
        return private.finish_event('stripe', event_id, account.organization_id, 'applied',
          format('payment %s (charge %s)', charge.payment_id, charge.id));
      end if;
      -- One payment per PaymentIntent, whichever event tells it first.
      payment := public.record_payment(account.organization_id, account.id, amount, 'stripe:' || intent, 'card', 'stripe', intent,
        true, null, null, occurred, private.try_uuid(object -> 'metadata' ->> 'wingtel_invoice_id'));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'payment ' || payment.id);

    when event_type in ('payment_intent.payment_failed', 'invoice.payment_failed') then
      if event_type = 'payment_intent.payment_failed' then
        amount := (object ->> 'amount')::bigint;
        failure_code := coalesce(object -> 'last_payment_error' ->> 'decline_code', object -> 'last_payment_error' ->> 'code');
        failure_message := object -> 'last_payment_error' ->> 'message';
      else
        amount := (object ->> 'amount_due')::bigint;
      end if;
      if coalesce(amount, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'no amount was due');
      end if;
      -- A decline of a charge Wingtel sent is that charge's outcome, recorded once.
      charge := private.provider_charge('stripe',
        case when event_type = 'payment_intent.payment_failed' then object ->> 'id' else object ->> 'payment_intent' end,
        private.try_uuid(object -> 'metadata' ->> 'wingtel_charge_id'));
      if charge.id is not null and charge.organization_id = account.organization_id then
        if charge.status not in ('pending', 'awaiting_confirmation') then
          return private.finish_event('stripe', event_id, account.organization_id, 'ignored',
            format('charge %s is already %s', charge.id, charge.status));
        end if;
        charge := public.finish_payment_charge(charge.organization_id, charge.id, 'declined',
          case when event_type = 'payment_intent.payment_failed' then object ->> 'id' else object ->> 'payment_intent' end,
          coalesce(failure_code, 'payment_failed'), failure_message);
        return private.finish_event('stripe', event_id, account.organization_id, 'applied',
          format('charge %s declined (failed payment %s)', charge.id, charge.payment_id));
      end if;
      -- Each failed attempt is kept (its own event id), the success that may follow is a payment of its own.
      payment := public.record_payment(account.organization_id, account.id, amount, 'stripe:' || event_id, 'card', 'stripe',
        'failed:' || event_id, false, coalesce(failure_code, 'payment_failed'), failure_message, occurred);
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'failed payment ' || payment.id);

    when event_type = 'charge.refunded' then
      select p.* into payment from public.payments p
       where p.organization_id = account.organization_id and p.provider = 'stripe' and p.status = 'succeeded'
         and p.provider_payment_id in (object ->> 'payment_intent', object ->> 'id');
      if payment.id is null then
        return private.finish_event('stripe', event_id, account.organization_id, 'unmatched', 'no recorded payment for this charge');
      end if;
      -- amount_refunded is the charge's total so far: apply only what is new (order-proof).
      refunded := least((object ->> 'amount_refunded')::bigint, payment.amount_cents) - payment.refunded_cents;
      if coalesce(refunded, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'refund already recorded');
      end if;
      payment := public.refund_payment(account.organization_id, payment.id, refunded, 'Stripe refund of charge ' || (object ->> 'id'));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', format('refunded %s cents of payment %s', refunded, payment.id));

    when event_type = 'charge.dispute.created' then
      insert into public.notes (organization_id, account_id, body)
      values (account.organization_id, account.id,
              format('Stripe dispute %s opened on charge %s: %s cents, reason %s. Answer it in the Stripe dashboard before its due date.',
                     object ->> 'id', object ->> 'charge', object ->> 'amount', coalesce(object ->> 'reason', 'not given')));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'dispute noted on the account');

    else
      -- Customer and subscription events: remember which Stripe customer pays for the account.
      if event_type = 'customer.subscription.deleted' then
        insert into public.notes (organization_id, account_id, body)
        values (account.organization_id, account.id, format('Stripe subscription %s was cancelled.', object ->> 'id'));
      end if;
      if account.stripe_customer_id is distinct from coalesce(
           case when object ->> 'object' = 'customer' then object ->> 'id' else object ->> 'customer' end, account.stripe_customer_id) then
        update public.accounts a
           set stripe_customer_id = case when object ->> 'object' = 'customer' then object ->> 'id' else object ->> 'customer' end
         where a.organization_id = account.organization_id and a.id = account.id;
        return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'Stripe customer linked to the account');
      end if;
      return private.finish_event('stripe', event_id, account.organization_id,
        case when event_type = 'customer.subscription.deleted' then 'applied' else 'ignored' end, null);
  end case;
end;
$$;
comment on function public.handle_stripe_event(jsonb, text) is 'Applies one verified Stripe event once: payments (payment_intent.succeeded, invoice.paid), failed attempts, refunds (by state), disputes (a note), customer links. Returns {outcome: applied|ignored|unmatched|duplicate, event_id, detail}.';

revoke all on function private.stripe_account(jsonb), public.handle_stripe_event(jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_stripe_event(jsonb, text) to service_role;

-- >>> sql/50_functions/25_zift.sql (sha256 39e51e57dac1fe663a08932165076f9e7cc096ec4ed4e7787d596828dd2f3331)
-- Zift notifications (POST /functions/v1/zift-webhook). Zift's notification format is not
-- published, so a notification is never trusted as it comes: the server checks its HMAC, then
-- asks the Zift gateway for the transaction (`requestType=find`) and passes both here; what is
-- applied comes from the gateway's answer (the confirmation), the notification only names the
-- transaction.
--   sale / capture approved (responseCode A…)  → a payment (once per transaction id)
--   sale declined (any other code but X02)      → a failed payment attempt (feeds dunning)
--   X02 (pending)                               → nothing yet (ignored; the next notification applies it)
--   refund / void approved                      → a refund of the original payment
-- The account: userDefinedField1 (= the Wingtel account id Wingtel sends with each charge);
-- userDefinedField2 names the payment charge when Wingtel sent the sale (sql/40_billing/35_autopay.sql).

create or replace function public.handle_zift_event(notification jsonb, confirmation jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  transaction_id text := coalesce(confirmation ->> 'transactionId', notification ->> 'transactionId');
  kind text := lower(coalesce(confirmation ->> 'transactionType', notification ->> 'transactionType', 'sale'));
  code text := coalesce(confirmation ->> 'responseCode', '');
  event_id text;
  account public.accounts;
  payment public.payments;
  charge public.payment_charges;
  amount bigint;
  original text := confirmation ->> 'originalTransactionId';
begin
  if jsonb_typeof(notification) is distinct from 'object' or jsonb_typeof(confirmation) is distinct from 'object'
     or nullif(transaction_id, '') is null then
    raise exception 'a Zift notification names a transactionId, and the gateway''s confirmation must be given' using errcode = '22023';
  end if;
  if (confirmation ->> 'amount') !~ '^[0-9]+$' then
    raise exception 'the Zift confirmation has no amount in cents' using errcode = '22023';
  end if;
  amount := (confirmation ->> 'amount')::bigint;
  -- One transaction in one state is one event: a pending sale that is approved later is a new event.
  event_id := transaction_id || ':' || kind || ':' || coalesce(nullif(left(code, 1), ''), '?');
  if not private.receive_event('zift', event_id, kind, jsonb_build_object('notification', notification, 'confirmation', confirmation), request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  select a.* into account from public.accounts a where a.id = private.try_uuid(confirmation ->> 'userDefinedField1');
  if account.id is null then
    return private.finish_event('zift', event_id, null, 'unmatched', 'no account is named in userDefinedField1');
  end if;
  -- A sale Wingtel sent (userDefinedField2 = the charge): the charge records its outcome, once,
  -- whether this notification or the payment worker's answer comes first.
  if kind = 'sale' then
    charge := private.provider_charge('zift', transaction_id, private.try_uuid(confirmation ->> 'userDefinedField2'));
    if charge.id is not null and charge.organization_id = account.organization_id then
      if charge.status not in ('pending', 'awaiting_confirmation') and not (charge.status = 'succeeded' and left(code, 1) = 'A') then
        return private.finish_event('zift', event_id, account.organization_id, 'ignored', format('charge %s is already %s', charge.id, charge.status));
      end if;
      charge := public.finish_payment_charge(charge.organization_id, charge.id,
        case when left(code, 1) = 'A' then 'succeeded' when code = 'X02' then 'pending' else 'declined' end,
        transaction_id, nullif(code, ''), confirmation ->> 'responseMessage');
      return private.finish_event('zift', event_id, account.organization_id, case when code = 'X02' then 'ignored' else 'applied' end,
        format('charge %s %s', charge.id, charge.status) || coalesce(' (payment ' || charge.payment_id || ')', ''));
    end if;
  end if;
  if code = 'X02' then
    return private.finish_event('zift', event_id, account.organization_id, 'ignored', 'pending at Zift');
  end if;
  if kind in ('sale', 'capture') then
    if left(code, 1) = 'A' then
      payment := public.record_payment(account.organization_id, account.id, amount, 'zift:' || transaction_id, 'card', 'zift', transaction_id);
      return private.finish_event('zift', event_id, account.organization_id, 'applied', 'payment ' || payment.id);
    end if;
    payment := public.record_payment(account.organization_id, account.id, amount, 'zift:' || transaction_id || ':' || code, 'card', 'zift',
      'failed:' || transaction_id, false, coalesce(nullif(code, ''), 'declined'), confirmation ->> 'responseMessage');
    return private.finish_event('zift', event_id, account.organization_id, 'applied', 'failed payment ' || payment.id);
  elsif kind in ('refund', 'void') and left(code, 1) = 'A' then
    select p.* into payment from public.payments p
     where p.organization_id = account.organization_id and p.provider = 'zift' and p.status = 'succeeded' and p.provider_payment_id = original;
    if payment.id is null then
      return private.finish_event('zift', event_id, account.organization_id, 'unmatched', 'no recorded payment for transaction ' || coalesce(original, '?'));
    end if;
    amount := least(amount, payment.amount_cents - payment.refunded_cents);
    if amount <= 0 then
      return private.finish_event('zift', event_id, account.organization_id, 'ignored', 'already refunded');
    end if;
    payment := public.refund_payment(account.organization_id, payment.id, amount, 'Zift ' || kind || ' ' || transaction_id);
    return private.finish_event('zift', event_id, account.organization_id, 'applied', format('refunded %s cents of payment %s', amount, payment.id));
  end if;
  return private.finish_event('zift', event_id, account.organization_id, 'ignored', format('Wingtel does not act on a %s with code %s', kind, code));
end;
$$;
comment on function public.handle_zift_event(jsonb, jsonb, text) is 'Applies one Zift notification once, from the gateway''s confirmation of the transaction (find): approved sales are payments, declines failed attempts, approved refunds and voids refunds. Returns {outcome, event_id, detail}.';

revoke all on function public.handle_zift_event(jsonb, jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_zift_event(jsonb, jsonb, text) to service_role;

-- >>> sql/50_functions/40_carriers.sql (sha256 f24d6ba1087851869cbeff5eaeb89e6f419f88a497cd142d7f4da530dd491404)
-- Carrier callbacks (POST /functions/v1/carriers/verizon|att|tmobile), after the server checked
-- each carrier's authentication. Three kinds of news arrive:
--   * the asynchronous result of a command Wingtel sent (ThingSpace answers every provisioning
--     request with a requestId and reports the outcome later on its CarrierService callback):
--     the command is found by carrier_request_id and completed through complete_carrier_command,
--     which finalizes the line's network state or rolls the business state back;
--   * a line's state changed at the carrier (AT&T SIM_STATE_CHANGE push, ThingSpace suspension
--     status and external provisioning changes, aggregator status events): an open command
--     expecting that state is completed; otherwise the line's network_status follows the carrier
--     and the change is written to the line's history for operations to review;
--   * usage of a line (ThingSpace DeviceUsage with usageHistory records, the aggregator's usage
--     events): the records go into usage ingestion (ingest_usage_records), source = the carrier.
--     AT&T's push carries cycle-to-date totals, not records: its usage comes by file.
--
-- Payloads, as the server passes them:
--   verizon  the JSON body: {requestId, deviceIds:[{id, kind}], deviceResponse:{…} | faultResponse:{faultcode, faultstring}
--            | usageHistory:[{timestamp, bytesUsed, smsUsed}], …}
--   att      the form parameters as a JSON object: {eventId, eventType, timestamp, data (XML), signature2}
--   tmobile  the JSON body: {eventId, eventType, requestId?, msisdn?, iccid?, status?, error?:{code, message},
--            records?:[{recordId, recordedAt, kind, quantity}] with eventType usage}

create or replace function private.carrier_network_state(carrier text, state text)
returns public.network_status
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case carrier
    when 'verizon' then case lower(state) when 'active' then 'active' when 'suspend' then 'suspended' when 'suspended' then 'suspended'
                                          when 'deactive' then 'deactivated' when 'deactivated' then 'deactivated' when 'preactive' then 'none' end
    when 'att' then case upper(state) when 'ACTIVATED' then 'active' when 'DEACTIVATED' then 'deactivated' when 'RETIRED' then 'deactivated'
                                      when 'PURGED' then 'deactivated' when 'INVENTORY' then 'none' when 'TEST_READY' then 'none'
                                      when 'ACTIVATION_READY' then 'none' end
    when 'tmobile' then case upper(state) when 'ACTIVE' then 'active' when 'SUSPENDED' then 'suspended' when 'CANCELED' then 'deactivated'
                                          when 'CANCELLED' then 'deactivated' end
  end::public.network_status
$$;
comment on function private.carrier_network_state(text, text) is 'A carrier''s line or SIM state (ThingSpace preactive/active/suspend/deactive, Control Center ACTIVATED/DEACTIVATED/…, aggregator ACTIVE/SUSPENDED/CANCELED) as Wingtel''s network_status; null for a state it does not know.';

create or replace function private.carrier_adapter_of(carrier text)
returns public.carrier_adapter
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case carrier when 'verizon' then 'thingspace' when 'att' then 'att_control_center' when 'tmobile' then 'tmobile_aggregator' end::public.carrier_adapter
$$;
comment on function private.carrier_adapter_of(text) is 'The carrier adapter behind a callback route (verizon → thingspace, att → att_control_center, tmobile → tmobile_aggregator).';

-- The line a carrier callback is about: by the SIM's ICCID or by MDN, among the lines on that
-- carrier's adapter; one matching both first, then a live line, then the newest.
create or replace function private.carrier_line(adapter public.carrier_adapter, iccid text, mdn text)
returns public.subscribers
language sql
stable
security definer
set search_path = ''
as $$
  select s.* from public.subscribers s
    join public.carriers k on k.organization_id = s.organization_id and k.id = s.carrier_id and k.adapter = carrier_line.adapter
    left join public.sim_cards c on c.organization_id = s.organization_id and c.id = s.current_sim_id
   where (carrier_line.iccid is not null and c.iccid = carrier_line.iccid)
      or (carrier_line.mdn is not null and s.mdn = public.normalize_mdn(carrier_line.mdn))
   order by (carrier_line.iccid is not null and c.iccid = carrier_line.iccid
             and carrier_line.mdn is not null and s.mdn = public.normalize_mdn(carrier_line.mdn)) desc,
            (s.status in ('pending', 'active', 'suspended')) desc, s.created_at desc
   limit 1
$$;
comment on function private.carrier_line(public.carrier_adapter, text, text) is 'The line a carrier callback names by ICCID or MDN on that carrier (one matching both first, then a live line, then the newest); null fields when none.';

create or replace function public.handle_carrier_event(carrier text, event jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  route_adapter public.carrier_adapter := private.carrier_adapter_of(carrier);
  event_id text;
  event_type text;
  correlation text;
  failed boolean := false;
  failure text;
  carrier_result jsonb := '{}';
  device_iccid text;
  device_mdn text;
  carrier_state text;
  new_state public.network_status;
  command public.carrier_commands;
  line public.subscribers;
  usage jsonb;
  batch public.usage_batches;
begin
  if route_adapter is null then
    raise exception 'unknown carrier route %', carrier using errcode = '22023', hint = 'One of verizon, att, tmobile.';
  end if;
  if jsonb_typeof(event) is distinct from 'object' then
    raise exception 'a % callback is a JSON object', carrier using errcode = '22023';
  end if;

  case carrier
    when 'verizon' then
      correlation := nullif(event ->> 'requestId', '');
      if jsonb_typeof(event -> 'faultResponse') = 'object' then
        failed := true;
        failure := coalesce(event -> 'faultResponse' ->> 'faultstring', event -> 'faultResponse' ->> 'faultcode', 'ThingSpace reported a fault');
        carrier_result := event -> 'faultResponse';
      elsif jsonb_typeof(event -> 'deviceResponse') = 'object' then
        carrier_result := event -> 'deviceResponse';
      end if;
      if jsonb_typeof(event -> 'deviceIds') = 'array' then
        select max(d ->> 'id') filter (where lower(d ->> 'kind') = 'iccid'),
               max(d ->> 'id') filter (where lower(d ->> 'kind') in ('mdn', 'msisdn'))
          into device_iccid, device_mdn
        from jsonb_array_elements(event -> 'deviceIds') d where jsonb_typeof(d) = 'object';
      end if;
      carrier_state := coalesce(carrier_result ->> 'state', carrier_result ->> 'status', event ->> 'state');
      if correlation is null and device_iccid is null and device_mdn is null then
        raise exception 'a ThingSpace callback needs a requestId or deviceIds' using errcode = '22023';
      end if;
      event_type := case when jsonb_typeof(event -> 'usageHistory') = 'array' then 'DeviceUsage'
                         when correlation is not null then 'CarrierService' else 'DeviceStatus' end;
      -- ThingSpace repeats a callback (callbackCount) until it is acknowledged: same request, same event.
      event_id := coalesce(correlation, md5((event - 'callbackCount' - 'username' - 'password')::text));
    when 'att' then
      event_type := nullif(event ->> 'eventType', '');
      if event_type is null or nullif(event ->> 'data', '') is null then
        raise exception 'a Control Center push needs eventType and data' using errcode = '22023';
      end if;
      device_iccid := substring(event ->> 'data' from '<iccid>\s*([0-9A-Fa-f]+)\s*</iccid>');
      carrier_state := substring(event ->> 'data' from '<currentState>\s*([A-Z_]+)\s*</currentState>');
      event_id := coalesce(nullif(event ->> 'eventId', ''), md5(coalesce(event ->> 'timestamp', '') || (event ->> 'data')));
      carrier_result := jsonb_strip_nulls(jsonb_build_object('iccid', device_iccid, 'state', carrier_state,
                  'previousState', substring(event ->> 'data' from '<previousState>\s*([A-Z_]+)\s*</previousState>')));
    else
      event_id := nullif(event ->> 'eventId', '');
      event_type := coalesce(nullif(event ->> 'eventType', ''), 'status');
      if event_id is null then
        raise exception 'an aggregator callback needs an eventId' using errcode = '22023';
      end if;
      correlation := nullif(event ->> 'requestId', '');
      device_iccid := nullif(event ->> 'iccid', '');
      device_mdn := coalesce(nullif(event ->> 'msisdn', ''), nullif(event ->> 'ctn', ''));
      carrier_state := nullif(event ->> 'status', '');
      if jsonb_typeof(event -> 'error') = 'object' or upper(coalesce(event ->> 'result', '')) in ('FAILED', 'FAILURE', 'ERROR') then
        failed := true;
        failure := coalesce(event -> 'error' ->> 'message', event -> 'error' ->> 'code', 'the aggregator reported a failure');
      end if;
      carrier_result := event - 'eventId';
  end case;

  if not private.receive_event(carrier, event_id, event_type, event - 'password', request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;

  -- 0. Usage the carrier reports for a line — ThingSpace DeviceUsage carrying usageHistory
  -- records ({timestamp, bytesUsed, smsUsed}, as POST /devices/usage/actions/list returns them),
  -- the aggregator's usage events ({eventType: usage, msisdn|iccid, records: [{recordId,
  -- recordedAt, kind, quantity}]}) — goes into usage ingestion: re-delivered records count once,
  -- unreadable ones are quarantined.
  if event_type in ('DeviceUsage', 'usage')
     and (jsonb_typeof(event -> 'usageHistory') = 'array' or jsonb_typeof(event -> 'records') = 'array') then
    line := private.carrier_line(route_adapter, device_iccid, device_mdn);
    if line.id is null then
      return private.finish_event(carrier, event_id, null, 'unmatched',
        format('usage for no known line (ICCID %s / MDN %s)', coalesce(device_iccid, '-'), coalesce(device_mdn, '-')));
    end if;
    if carrier = 'verizon' then
      select coalesce(jsonb_agg(jsonb_build_object('mdn', line.mdn, 'recorded_at', h.value ->> 'timestamp', 'kind', q.kind,
                                                   'quantity', q.amount,
                                                   'record_id', format('%s|%s|%s', coalesce(device_iccid, device_mdn), h.value ->> 'timestamp', q.kind))
                                order by h.n, q.kind), '[]')
        into usage
      from jsonb_array_elements(event -> 'usageHistory') with ordinality as h (value, n)
      cross join lateral (values ('data', h.value ->> 'bytesUsed'), ('sms', h.value ->> 'smsUsed')) as q (kind, amount)
      where q.amount is not null;
    else
      select coalesce(jsonb_agg(jsonb_build_object('mdn', line.mdn, 'recorded_at', coalesce(u.value ->> 'recordedAt', u.value ->> 'timestamp'),
                                                   'kind', lower(u.value ->> 'kind'), 'quantity', u.value ->> 'quantity',
                                                   'record_id', u.value ->> 'recordId') order by u.n), '[]')
        into usage
      from jsonb_array_elements(event -> 'records') with ordinality as u (value, n);
    end if;
    batch := public.ingest_usage_records(line.organization_id, carrier, usage, carrier || ' callback ' || event_id);
    return private.finish_event(carrier, event_id, line.organization_id, 'applied',
      format('usage batch %s: %s records, %s new, %s already counted, %s quarantined', batch.id, batch.rows_total, batch.rows_inserted,
             batch.rows_duplicate, batch.rows_quarantined));
  end if;

  -- 1. The result of a command Wingtel sent.
  if correlation is not null then
    select c.* into command from public.carrier_commands c
      join public.carriers k on k.organization_id = c.organization_id and k.id = c.carrier_id
     where c.carrier_request_id = correlation and k.adapter = route_adapter;
    if command.id is null then
      return private.finish_event(carrier, event_id, null, 'unmatched', 'no command has carrier request id ' || correlation);
    end if;
    if command.status in ('succeeded', 'failed', 'dead') then
      return private.finish_event(carrier, event_id, command.organization_id, 'ignored',
        format('command %s had already ended as %s', command.id, command.status));
    end if;
    command := public.complete_carrier_command(command.organization_id, command.id, not failed, carrier_result, failure);
    return private.finish_event(carrier, event_id, command.organization_id, 'applied', format('command %s %s', command.id, command.status));
  end if;

  -- 2. A line's state changed at the carrier.
  new_state := private.carrier_network_state(carrier, carrier_state);
  if new_state is null then
    return private.finish_event(carrier, event_id, null, 'ignored',
      coalesce('state ' || carrier_state || ' is not one Wingtel tracks', 'no line state in the event'));
  end if;
  line := private.carrier_line(route_adapter, device_iccid, device_mdn);
  if line.id is null then
    return private.finish_event(carrier, event_id, null, 'unmatched', format('no line has ICCID %s / MDN %s', coalesce(device_iccid, '-'), coalesce(device_mdn, '-')));
  end if;
  -- An open command waiting for exactly this state is what the carrier is confirming.
  select c.* into command from public.carrier_commands c
   where c.organization_id = line.organization_id and c.subscriber_id = line.id and c.status = 'in_flight'
     and new_state = case c.kind when 'activate' then 'active' when 'port_in' then 'active' when 'restore' then 'active'
                             when 'suspend' then 'suspended' when 'deactivate' then 'deactivated' when 'port_out' then 'deactivated' end::public.network_status;
  if command.id is not null then
    command := public.complete_carrier_command(command.organization_id, command.id, true, carrier_result, null);
    return private.finish_event(carrier, event_id, line.organization_id, 'applied', format('command %s confirmed by the carrier', command.id));
  end if;
  if line.network_status = new_state then
    return private.finish_event(carrier, event_id, line.organization_id, 'ignored', 'the line is already ' || new_state);
  end if;
  update public.subscribers s set network_status = new_state where s.organization_id = line.organization_id and s.id = line.id;
  insert into public.subscriber_events (organization_id, subscriber_id, kind, reason, actor_name, details)
  values (line.organization_id, line.id, 'network_state_changed', 'changed at the carrier, not by Wingtel', carrier || '-webhook',
          jsonb_build_object('from', line.network_status, 'to', new_state, 'carrier_state', carrier_state, 'event_id', event_id));
  return private.finish_event(carrier, event_id, line.organization_id, 'applied', format('network state %s → %s', line.network_status, new_state));
end;
$$;
comment on function public.handle_carrier_event(text, jsonb, text) is 'Applies one authenticated carrier callback once: usage records of a line (into usage ingestion), a command result correlated by the carrier''s request id (completed or rolled back), or a line state change reported by the carrier (confirms an open command, or moves network_status and notes it in the line''s history). Returns {outcome, event_id, detail}.';

revoke all on function private.carrier_network_state(text, text), private.carrier_adapter_of(text),
  private.carrier_line(public.carrier_adapter, text, text),
  public.handle_carrier_event(text, jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_carrier_event(text, jsonb, text) to service_role;

-- >>> sql/50_functions/70_scheduler.sql (sha256 97f0562bf43e31cde82d83b0221e616c5472d13a954276e243583530b9dff817)
-- The scheduler of `wingtel serve` (Sources/WingtelFunctions/Outbox/Scheduler.swift). Every
-- few minutes it asks which jobs are due and runs each in a transaction of its own:
--   bill_run       run_bill_cycle for the organization's current month: bills the accounts whose
--                  billing day has come (a re-run changes nothing), daily from 02:00 local time;
--   autopay        queue_autopay_charges: charges of the autopay accounts' issued invoices and the
--                  retries due after declines, daily from 02:00 (after the bill run);
--   dunning        run_dunning, daily from 06:00 local time (after the bill run);
--   plan_changes   apply_scheduled_plan_changes (downgrades whose period started), every tick.
-- A daily job is claimed once per organization and local day (private.job_runs): with several
-- servers, one runs it. A failed job keeps its error and is tried again ten minutes later.
-- On Supabase without `wingtel serve`, pg_cron can call the same functions (docs/API.md).

create or replace function public.claim_scheduled_jobs(as_of timestamptz default now())
returns table (job text, organization_id uuid, run_on date)
language sql
security definer
set search_path = ''
as $$
  insert into private.job_runs as r (job, organization_id, run_on)
  select j.job, o.id, (claim_scheduled_jobs.as_of at time zone o.time_zone)::date
  from public.organizations o
  cross join (values ('bill_run', time '02:00'), ('autopay', time '02:00'), ('dunning', time '06:00')) as j (job, not_before)
  where (claim_scheduled_jobs.as_of at time zone o.time_zone)::time >= j.not_before
  -- A job that failed is tried again after ten minutes; one whose server died (claimed, never
  -- finished) after two hours.
  on conflict on constraint job_runs_pkey do update
     set started_at = now(), finished_at = null, outcome = null, result = null
   where (r.outcome = 'failed' and r.finished_at < now() - interval '10 minutes')
      or (r.outcome is null and r.started_at < now() - interval '2 hours')
  returning r.job, r.organization_id, r.run_on
$$;
comment on function public.claim_scheduled_jobs(timestamptz) is 'The daily jobs due now that no server has claimed yet for the organization''s local day; claims them (services only).';

create or replace function public.run_scheduled_job(job text, organization_id uuid, run_on date, as_of timestamptz default now())
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  job_result jsonb;
begin
  perform set_config('wingtel.actor', 'scheduler', true);
  case run_scheduled_job.job
    when 'bill_run' then
      select to_jsonb(r) into job_result
      from public.run_bill_cycle(run_scheduled_job.organization_id, date_trunc('month', run_scheduled_job.run_on)::date, run_scheduled_job.as_of) r;
    when 'autopay' then
      job_result := jsonb_build_object('charges_queued',
        public.queue_autopay_charges(run_scheduled_job.organization_id, run_scheduled_job.as_of));
    when 'dunning' then
      select coalesce(jsonb_object_agg(d.step, d.invoices), '{}') into job_result
      from public.run_dunning(run_scheduled_job.organization_id, run_scheduled_job.as_of) d;
    else
      raise exception 'unknown scheduled job %', run_scheduled_job.job using errcode = '22023';
  end case;
  update private.job_runs r set finished_at = now(), outcome = 'succeeded', result = job_result
   where r.job = run_scheduled_job.job and r.organization_id = run_scheduled_job.organization_id and r.run_on = run_scheduled_job.run_on;
  return job_result;
end;
$$;
comment on function public.run_scheduled_job(text, uuid, date, timestamptz) is 'Runs one claimed daily job (bill_run, autopay, dunning) as the scheduler and records its result; on error nothing of it stays (the scheduler then calls fail_scheduled_job).';

create or replace function public.fail_scheduled_job(job text, organization_id uuid, run_on date, error text)
returns void
language sql
security definer
set search_path = ''
as $$
  update private.job_runs r set finished_at = now(), outcome = 'failed', result = jsonb_build_object('error', fail_scheduled_job.error)
   where r.job = fail_scheduled_job.job and r.organization_id = fail_scheduled_job.organization_id and r.run_on = fail_scheduled_job.run_on
$$;
comment on function public.fail_scheduled_job(text, uuid, date, text) is 'Records that a claimed job failed, with the error; it is claimed again after ten minutes.';

create or replace view public.scheduled_job_runs with (security_barrier) as
select r.organization_id, r.job, r.run_on, r.started_at, r.finished_at, r.outcome, r.result
from private.job_runs r
where r.organization_id = any ((select private.user_org_ids('operator'))::uuid[])
   or coalesce(nullif(current_setting('role', true), ''), 'none') = 'service_role';
comment on view public.scheduled_job_runs is 'Daily scheduled jobs of the caller''s organizations (operators and up): when each ran and what it did.';

revoke all on function public.claim_scheduled_jobs(timestamptz), public.run_scheduled_job(text, uuid, date, timestamptz),
  public.fail_scheduled_job(text, uuid, date, text) from public, anon, authenticated;
grant execute on function public.claim_scheduled_jobs(timestamptz), public.run_scheduled_job(text, uuid, date, timestamptz),
  public.fail_scheduled_job(text, uuid, date, text) to service_role;
revoke all on public.scheduled_job_runs from public, anon;
grant select on public.scheduled_job_runs to authenticated, service_role;
