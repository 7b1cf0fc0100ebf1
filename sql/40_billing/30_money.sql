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
