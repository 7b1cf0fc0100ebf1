-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/01_audit/10_capture.sql (sha256 41177985f24eed9e6a7fc5868a5fdeb1dbf83a92918a6c4953c8805712906b5b)
-- Audit capture: statement-level triggers with transition tables write one entry per
-- changed row in a single set-based insert (no per-row trigger calls). Updates are
-- compared column by column and stored as aligned text arrays (no whole-row JSON), which
-- keeps a bulk update's audit cost near the cost of the update itself (benchmarks/).

create or replace function audit.capture()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- Trigger arguments: organization column, category, key columns (comma-separated), excluded columns.
  org_column text := tg_argv[0];
  entry_category text := tg_argv[1];
  key_columns text[] := string_to_array(tg_argv[2], ',');
  excluded text[] := coalesce(string_to_array(nullif(tg_argv[3], ''), ','), '{}');
  record_id_expression text;
  join_condition text;
  names_expression text;
  old_expression text;
  new_expression text;
  changed_any text;
  table_label text := tg_table_schema || '.' || tg_table_name;
  actor_id uuid := auth.uid();
  actor text := nullif(current_setting('wingtel.actor', true), '');
  request text := nullif(current_setting('wingtel.request_id', true), '');
  -- The role the caller acts as (SET ROLE survives security definer; current_user does not).
  acting_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
  -- The statement for this table, operation and trigger arguments is built from the catalog
  -- once per session and kept in a session setting. Its name carries the xmin of the table's
  -- pg_class row, which every ALTER TABLE changes: a table whose columns changed gets a new
  -- statement. (Building it costs catalog queries; for single-row changes that was most of the
  -- trigger's time.)
  cache_name text := format('wingtel_audit.s%s_%s_%s_%s', tg_relid::oid::int8, lower(tg_op),
                            (select c.xmin::text from pg_catalog.pg_class c where c.oid = tg_relid), md5(array_to_string(tg_argv, '|')));
  statement text := nullif(current_setting(cache_name, true), '');
begin
  -- A statement that changed no row (an UPDATE … WHERE that matched nothing) leaves no entry;
  -- say so before any other work (statement-level triggers fire for zero rows too).
  if tg_op = 'DELETE' then
    if not exists (select 1 from old_rows) then return null; end if;
  elsif not exists (select 1 from new_rows) then
    return null;
  end if;
  if statement is not null then
    execute statement using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
    return null;
  end if;
  -- Key columns are primary-key columns (never null): old and new rows pair up by hash join.
  select concat_ws(' || '','' || ', variadic array_agg(format('r.%I::text', k)) filter (where k <> org_column)),
         string_agg(format('o.%1$I = n.%1$I', k), ' and ')
    into record_id_expression, join_condition
    from unnest(key_columns) as k;
  record_id_expression := coalesce(record_id_expression, format('r.%I::text', org_column));

  if tg_op = 'INSERT' then
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''insert'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from new_rows r',
      org_column, record_id_expression);
  elsif tg_op = 'DELETE' then
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''delete'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from old_rows r',
      org_column, record_id_expression);
  else
    -- One array slot per column (read from the catalog at each statement, so columns added
    -- later are covered); null where the column did not change.
    select 'array[' || string_agg(format('case when %s then %L end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           'array[' || string_agg(format('case when %s then o.%I::text end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           'array[' || string_agg(format('case when %s then n.%I::text end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           string_agg(changed, ' or ')
      into names_expression, old_expression, new_expression, changed_any
      from pg_catalog.pg_attribute a
      cross join lateral (
        select case when exists (select 1 from pg_catalog.pg_operator op
                                 where op.oprname = '=' and op.oprleft = a.atttypid and op.oprright = a.atttypid)
                    then format('o.%1$I is distinct from n.%1$I', a.attname)
                    else format('o.%1$I::text is distinct from n.%1$I::text', a.attname) end as changed) c
     where a.attrelid = tg_relid and a.attnum > 0 and not a.attisdropped and a.attname <> all (excluded);
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, changed_columns, old_values, new_values)
       select n.%1$I, $1, $2, $7, $3, ''update'', $4, $5, %2$s, %3$s, %4$s, %5$s
       from old_rows o join new_rows n on %6$s
       where %7$s',
      org_column, replace(record_id_expression, 'r.', 'n.'), names_expression, old_expression, new_expression,
      join_condition, changed_any);
  end if;
  perform set_config(cache_name, statement, false);
  execute statement using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  return null;
end;
$$;
comment on function audit.capture() is 'Statement-level trigger: appends one audit entry per changed row (set-based, from transition tables). Arguments: organization column, category, key columns, excluded columns.';
revoke all on function audit.capture() from public;

-- Turns auditing on for a table: three statement-level triggers (insert, update, delete).
create or replace function audit.enable(
  target regclass,
  category text,
  org_column text default 'organization_id',
  key_columns text[] default array['organization_id', 'id'],
  excluded_columns text[] default '{}'
)
returns void
language plpgsql
set search_path = ''
as $$
declare
  args text := format('%L, %L, %L, %L', org_column, category, array_to_string(key_columns, ','), array_to_string(excluded_columns, ','));
begin
  if category not in ('customer_care', 'operations', 'catalog', 'administration', 'billing') then
    raise exception 'unknown audit category "%"', category
      using errcode = '22023', hint = 'Use customer_care, operations, catalog, billing or administration.';
  end if;
  execute format('create or replace trigger audit_insert after insert on %s referencing new table as new_rows for each statement execute function audit.capture(%s)', target, args);
  execute format('create or replace trigger audit_update after update on %s referencing old table as old_rows new table as new_rows for each statement execute function audit.capture(%s)', target, args);
  execute format('create or replace trigger audit_delete after delete on %s referencing old table as old_rows for each statement execute function audit.capture(%s)', target, args);
end;
$$;
comment on function audit.enable(regclass, text, text, text[], text[]) is 'Attaches the audit triggers to a business table. Call it in the migration that creates the table.';
revoke all on function audit.enable(regclass, text, text, text[], text[]) from public;

-- Audit rows are never changed or removed, by any role (privileges are revoked too).
create or replace function audit.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'audit records are append-only: % on %.% is not allowed', tg_op, tg_table_schema, tg_table_name
    using errcode = '42501';
end;
$$;
revoke all on function audit.forbid_change() from public;

create or replace trigger entries_append_only before update or delete on audit.entries
  for each row execute function audit.forbid_change();
create or replace trigger entries_no_truncate before truncate on audit.entries
  for each statement execute function audit.forbid_change();
create or replace trigger seals_append_only before update or delete on audit.seals
  for each row execute function audit.forbid_change();
create or replace trigger seals_no_truncate before truncate on audit.seals
  for each statement execute function audit.forbid_change();

-- What analysts and the activity feed read: old and new values as JSON objects.
create or replace view audit.changes with (security_invoker = true) as
select e.organization_id, e.id, e.occurred_at, e.actor_user_id, e.actor_name, e.db_role, e.request_id,
       e.action, e.category, e.table_name, e.record_id,
       case e.action
         when 'delete' then e.row_data
         when 'update' then (select jsonb_object_agg(u.name, u.old) from unnest(e.changed_columns, e.old_values) as u (name, old)
                             where u.name is not null)
       end as old_values,
       case e.action
         when 'insert' then e.row_data
         when 'update' then (select jsonb_object_agg(u.name, u.new) from unnest(e.changed_columns, e.new_values) as u (name, new)
                             where u.name is not null)
       end as new_values
from audit.entries e;
comment on view audit.changes is 'Audit entries with old and new values as JSON objects (on update, only the changed columns; values as text). Row-level security of audit.entries applies.';

-- >>> sql/40_billing/30_money.sql (sha256 d9b796977c3f42f6e1a153ebde46f33cf1e1004e66f5f2c0d7cc3692a55d8c6c)
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

-- >>> sql/50_functions/10_receipts.sql (sha256 90fcfabfe2cda813579b608478bc3f13bf2f9ca6df51879f6e46414b80bbf597)
-- What every webhook handler shares. The functions server verifies a request's signature and
-- then calls exactly one public.handle_* function; that function records the event once
-- (private.webhook_receipts, unique provider + event id) and applies it in the same
-- transaction. A re-delivered event finds its receipt and changes nothing.

create or replace function private.try_uuid(value text)
returns uuid
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when value ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then value::uuid end
$$;
comment on function private.try_uuid(text) is 'The text as a uuid, or null when it is not one (provider metadata is not trusted to be well-formed).';

create or replace function private.receive_event(
  provider text, event_id text, event_type text, payload jsonb, request_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  inserted integer;
begin
  if nullif(btrim(receive_event.event_id), '') is null then
    raise exception 'a % event needs an id', receive_event.provider using errcode = '22023';
  end if;
  -- The actor of every change this event makes, in the audit trail.
  perform set_config('wingtel.actor', receive_event.provider || '-webhook', true),
          set_config('wingtel.request_id', coalesce(receive_event.request_id, ''), true);
  -- Concurrent deliveries of one event wait here on the primary key; all but the first find
  -- the row and report a duplicate.
  insert into private.webhook_receipts (provider, event_id, event_type, outcome, request_id, payload)
  values (receive_event.provider, receive_event.event_id, coalesce(nullif(receive_event.event_type, ''), 'unknown'), 'ignored',
          receive_event.request_id, receive_event.payload)
  on conflict on constraint webhook_receipts_pkey do nothing;
  get diagnostics inserted = row_count;
  return inserted = 1;
end;
$$;
comment on function private.receive_event(text, text, text, jsonb, text) is 'Records an inbound event once and sets the audit actor (provider-webhook) and request id; false when the event was already received.';

create or replace function private.finish_event(
  provider text, event_id text, organization_id uuid, outcome text, detail text default null)
returns jsonb
language sql
security definer
set search_path = ''
as $$
  update private.webhook_receipts r
     set organization_id = finish_event.organization_id, outcome = finish_event.outcome, detail = finish_event.detail
   where r.provider = finish_event.provider and r.event_id = finish_event.event_id
  returning jsonb_strip_nulls(jsonb_build_object('outcome', r.outcome, 'event_id', r.event_id, 'detail', r.detail))
$$;
comment on function private.finish_event(text, text, uuid, text, text) is 'Sets what an event did (applied, ignored, unmatched) and for which organization; returns the answer the handler gives.';

revoke all on function private.try_uuid(text), private.receive_event(text, text, text, jsonb, text),
  private.finish_event(text, text, uuid, text, text) from public;

-- Staff see their organization's events (analysts and up: payloads carry customer data).
create or replace view public.webhook_events with (security_barrier) as
select r.organization_id, r.provider, r.event_id, r.event_type, r.outcome, r.detail, r.request_id, r.received_at, r.payload
from private.webhook_receipts r
where r.organization_id = any ((select private.user_org_ids('analyst'))::uuid[])
   or coalesce(nullif(current_setting('role', true), ''), 'none') = 'service_role';
comment on view public.webhook_events is 'Inbound provider events of the caller''s organizations (analysts and up), each once, with what it did: applied, ignored (a type Wingtel does not act on) or unmatched (no account, number, line or command of the organization).';
revoke all on public.webhook_events from public, anon, authenticated;
grant select on public.webhook_events to authenticated, service_role;

-- >>> sql/50_functions/20_stripe.sql (sha256 e7f2d2335717f8929b480d0ed6c9cc558c3bb184373020adb9368137d576c9bf)
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

-- >>> sql/50_functions/25_zift.sql (sha256 b76602e1a6b6db6e5bc9bc020e004b8da7626bf83b9d23a2e0506d62288a4dc2)
-- Zift notifications (POST /functions/v1/zift-webhook). Zift's notification format is not
-- published, so a notification is never trusted as it comes: the server checks its HMAC, then
-- asks the Zift gateway for the transaction (`requestType=find`) and passes both here; what is
-- applied comes from the gateway's answer (the confirmation), the notification only names the
-- transaction.
--   sale / capture approved (responseCode A…)  → a payment (once per transaction id)
--   sale declined (any other code but X02)      → a failed payment attempt (feeds dunning)
--   X02 (pending)                               → nothing yet (ignored; the next notification applies it)
--   refund / void approved                      → a refund of the original payment
-- The account: userDefinedField1 (= the Wingtel account id Wingtel sends with each charge).

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

-- >>> sql/50_functions/30_twilio.sql (sha256 23130b5bcf713da9dd475b23da294fef5ff7d623a73c66feba93661a315e4224)
-- Twilio SMS (POST /functions/v1/twilio-sms and /twilio-status), after the server checked
-- X-Twilio-Signature. Inbound messages are answered with TwiML built here:
--   BAL     what the account owes (open invoices) and its wallet balance
--   USAGE   the line's data, minutes and messages since its cycle started, against its plan
--   HELP    who the sender is talking to and the keywords
--   STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT — opt-out, always honoured
--   START, YES, UNSTOP — opt-in again
-- Anything else goes to customer care (public.care_inbox) with an acknowledgement.
-- A re-delivered message (same MessageSid) is answered with an empty <Response/>: the first
-- delivery's reply is not sent twice.

create or replace function private.xml_escape(value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(replace(replace(coalesce(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&apos;')
$$;
comment on function private.xml_escape(text) is 'Escapes text for XML element content and attributes (TwiML).';

create or replace function private.twiml(message text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when message is null then '<?xml version="1.0" encoding="UTF-8"?><Response/>'
              else '<?xml version="1.0" encoding="UTF-8"?><Response><Message>' || private.xml_escape(message) || '</Message></Response>' end
$$;
comment on function private.twiml(text) is 'A TwiML answer: one <Message> with the text, or an empty <Response/> (nothing is sent) for null.';

create or replace function private.sms_status_rank(status public.sms_status)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case status
    when 'accepted' then 1 when 'scheduled' then 1 when 'queued' then 2 when 'sending' then 3 when 'receiving' then 3
    when 'sent' then 4 when 'received' then 5
    when 'delivered' then 6 when 'undelivered' then 6 when 'failed' then 6 when 'canceled' then 6 when 'partially_delivered' then 6
    when 'read' then 7 end
$$;
comment on function private.sms_status_rank(public.sms_status) is 'How far along a message is; a status callback only moves a message to a higher rank (they arrive out of order).';

create or replace function private.sms_keyword(body text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when k in ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT') then 'STOP'
    when k in ('START', 'YES', 'UNSTOP') then 'START'
    when k in ('HELP', 'INFO') then 'HELP'
    when k in ('BAL', 'BALANCE') then 'BAL'
    when k in ('USAGE', 'DATA') then 'USAGE'
  end
  from (select upper(regexp_replace(coalesce(body, ''), '^[[:space:][:punct:]]+|[[:space:][:punct:]]+$', '', 'g')) as k) t
$$;
comment on function private.sms_keyword(text) is 'The command a text is (the whole message, any case, surrounding spaces and punctuation ignored): STOP, START, HELP, BAL, USAGE, or null.';

create or replace function private.sms_usage_reply(organization_id uuid, line public.subscribers)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  zone text;
  today date;
  cycle_start date;
  plan public.plans;
  used record;
  billing_day integer;
begin
  select o.time_zone into zone from public.organizations o where o.id = sms_usage_reply.organization_id;
  select a.billing_day into billing_day from public.accounts a where a.organization_id = line.organization_id and a.id = line.account_id;
  today := (now() at time zone zone)::date;
  cycle_start := make_date(extract(year from today)::int, extract(month from today)::int, billing_day);
  if cycle_start > today then
    cycle_start := (cycle_start - interval '1 month')::date;
  end if;
  select p.* into plan from public.subscriptions s join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now();
  select coalesce(sum(d.data_bytes), 0) as data_bytes, coalesce(sum(d.voice_seconds), 0) as voice_seconds,
         coalesce(sum(d.sms_count), 0) as sms_count into used
  from public.usage_daily d
  where d.organization_id = line.organization_id and d.subscriber_id = line.id and d.day >= cycle_start;
  return format('Since %s: data %s GB of %s, %s of %s min, %s of %s texts.',
    to_char(cycle_start, 'Mon FMDD'),
    to_char(used.data_bytes / 1073741824.0, 'FM999990.00'),
    case when plan.id is null then 'no plan' when plan.data_mb is null then 'unlimited' else to_char(plan.data_mb / 1024.0, 'FM99990.##') || ' GB' end,
    ceil(used.voice_seconds / 60.0)::bigint,
    case when plan.id is null then '0' when plan.voice_minutes is null then 'unlimited' else plan.voice_minutes::text end,
    used.sms_count,
    case when plan.id is null then '0' when plan.sms is null then 'unlimited' else plan.sms::text end);
end;
$$;
comment on function private.sms_usage_reply(uuid, public.subscribers) is 'The USAGE answer: the line''s usage since its current cycle started against its plan''s allowances.';

create or replace function public.handle_twilio_sms(params jsonb, request_id text default null)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  sid text := params ->> 'MessageSid';
  sender text := public.normalize_mdn(params ->> 'From');
  number public.messaging_numbers;
  line public.subscribers;
  account public.accounts;
  org public.organizations;
  keyword text;
  reply text;
  inbound uuid;
  opted_out boolean;
  owed bigint;
begin
  if jsonb_typeof(params) is distinct from 'object' or nullif(sid, '') is null or params ->> 'From' is null or params ->> 'To' is null then
    raise exception 'not a Twilio message: MessageSid, From and To are required' using errcode = '22023';
  end if;
  if length(coalesce(params ->> 'Body', '')) > 1600 then
    raise exception 'an SMS body is at most 1600 characters' using errcode = '22023';
  end if;
  if not private.receive_event('twilio', sid, 'sms.inbound', params, request_id) then
    return private.twiml(null);
  end if;
  select n.* into number from public.messaging_numbers n where n.phone_number = params ->> 'To';
  if number.id is null then
    perform private.finish_event('twilio', sid, null, 'unmatched', 'no organization owns ' || (params ->> 'To'));
    return private.twiml(null);
  end if;
  select o.* into org from public.organizations o where o.id = number.organization_id;
  select s.* into line from public.subscribers s
   where s.organization_id = org.id and s.mdn = sender and s.status not in ('cancelled', 'ported_out')
   order by s.created_at desc limit 1;
  if line.id is not null then
    select a.* into account from public.accounts a where a.organization_id = org.id and a.id = line.account_id;
  end if;
  keyword := private.sms_keyword(params ->> 'Body');
  opted_out := exists (select 1 from public.sms_opt_outs o where o.organization_id = org.id and o.phone_number = params ->> 'From');

  insert into public.sms_messages (organization_id, direction, provider_sid, from_number, to_number, body, num_media, status,
                                   account_id, subscriber_id, keyword, routed_to)
  values (org.id, 'inbound', sid, params ->> 'From', params ->> 'To', coalesce(params ->> 'Body', ''),
          coalesce(nullif(params ->> 'NumMedia', '')::integer, 0), 'received', account.id, line.id, keyword,
          case when keyword is null then 'care' end)
  returning id into inbound;

  case keyword
    when 'STOP' then
      insert into public.sms_opt_outs (organization_id, phone_number, keyword)
      values (org.id, params ->> 'From', upper(btrim(params ->> 'Body')))
      on conflict (organization_id, phone_number) do nothing;
      reply := format('%s: you are unsubscribed and will receive no more messages. Reply START to subscribe again.', org.name);
    when 'START' then
      delete from public.sms_opt_outs o where o.organization_id = org.id and o.phone_number = params ->> 'From';
      reply := format('%s: you are subscribed again. Reply HELP for help, STOP to unsubscribe.', org.name);
    when 'HELP' then
      reply := format('%s: reply BAL for your balance, USAGE for this cycle''s usage, STOP to unsubscribe. Anything else reaches our care team.', org.name);
    when 'BAL' then
      if account.id is null then
        reply := format('%s: this number is not an active line with us. Write to us and our care team will help.', org.name);
      else
        select coalesce(sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents), 0) into owed
        from public.invoices i where i.organization_id = org.id and i.account_id = account.id and i.status in ('open', 'past_due');
        reply := format('%s: you owe %s; wallet balance %s.', org.name, private.format_money(owed, org.currency),
                        private.format_money(private.wallet_balance(org.id, account.id), org.currency));
      end if;
    when 'USAGE' then
      if line.id is null then
        reply := format('%s: this number is not an active line with us. Write to us and our care team will help.', org.name);
      else
        reply := org.name || ': ' || private.sms_usage_reply(org.id, line);
      end if;
    else
      reply := format('%s: thanks, our care team will answer you here soon. Reply HELP for options.', org.name);
  end case;
  -- An opted-out number gets nothing but the answers to START and HELP.
  if opted_out and keyword is distinct from 'START' and keyword is distinct from 'HELP' then
    reply := null;
  end if;
  if reply is not null then
    insert into public.sms_messages (organization_id, direction, from_number, to_number, body, status, account_id, subscriber_id, in_reply_to)
    -- Twilio sends a TwiML reply itself (and gives it a SID Wingtel never sees): recorded as sent,
    -- so the SMS outbox (which sends accepted messages) does not send it again.
    values (org.id, 'outbound', params ->> 'To', params ->> 'From', reply, 'sent', account.id, line.id, inbound);
  end if;
  perform private.finish_event('twilio', sid, org.id, 'applied', coalesce(keyword, 'care'));
  return private.twiml(reply);
end;
$$;
comment on function public.handle_twilio_sms(jsonb, text) is 'Records one verified inbound SMS (Twilio form parameters as JSON) once and returns the TwiML answer: keyword replies, opt-out/opt-in, or routing to customer care. A repeated MessageSid gets an empty <Response/>.';

create or replace function public.handle_twilio_status(params jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  sid text := params ->> 'MessageSid';
  new_status public.sms_status;
  message public.sms_messages;
  event_id text;
begin
  if jsonb_typeof(params) is distinct from 'object' or nullif(sid, '') is null or params ->> 'MessageStatus' is null then
    raise exception 'not a Twilio status callback: MessageSid and MessageStatus are required' using errcode = '22023';
  end if;
  if not exists (select 1 from pg_catalog.pg_enum e where e.enumtypid = 'public.sms_status'::regtype and e.enumlabel = params ->> 'MessageStatus') then
    raise exception 'unknown Twilio MessageStatus %', params ->> 'MessageStatus' using errcode = '22023';
  end if;
  new_status := (params ->> 'MessageStatus')::public.sms_status;
  -- One status of one message is one event; the same status again is a duplicate.
  event_id := sid || ':' || new_status::text;
  if not private.receive_event('twilio', event_id, 'sms.status', params, request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  select m.* into message from public.sms_messages m where m.provider_sid = sid for update;
  if message.id is null then
    return private.finish_event('twilio', event_id, null, 'unmatched', 'no message ' || sid);
  end if;
  if private.sms_status_rank(new_status) <= private.sms_status_rank(message.status) then
    return private.finish_event('twilio', event_id, message.organization_id, 'ignored',
      format('%s arrived after %s', new_status, message.status));
  end if;
  update public.sms_messages m set status = new_status, error_code = coalesce(nullif(params ->> 'ErrorCode', ''), m.error_code)
   where m.organization_id = message.organization_id and m.id = message.id;
  return private.finish_event('twilio', event_id, message.organization_id, 'applied', format('%s → %s', message.status, new_status));
end;
$$;
comment on function public.handle_twilio_status(jsonb, text) is 'Applies one verified Twilio status callback: the message moves forward only (a late "sent" after "delivered" is ignored), with the error code of a failure.';

-- Customer care's queue: free-text messages no staff member has answered since.
create or replace view public.care_inbox with (security_invoker = true) as
select m.organization_id, m.id as message_id, m.created_at, m.from_number, m.account_id, m.subscriber_id, m.body
from public.sms_messages m
where m.routed_to = 'care'
  and not exists (select 1 from public.sms_messages r
                  where r.organization_id = m.organization_id and r.direction = 'outbound' and r.to_number = m.from_number
                    and r.sent_by is not null and r.created_at >= m.created_at);
comment on view public.care_inbox is 'Inbound texts customer care has not answered yet: free text routed to care with no later message to the number written by a staff member (automatic replies do not count).';

revoke all on function private.xml_escape(text), private.twiml(text), private.sms_status_rank(public.sms_status), private.sms_keyword(text),
  private.sms_usage_reply(uuid, public.subscribers), public.handle_twilio_sms(jsonb, text), public.handle_twilio_status(jsonb, text)
  from public, anon, authenticated;
grant execute on function public.handle_twilio_sms(jsonb, text), public.handle_twilio_status(jsonb, text) to service_role;

-- >>> sql/50_functions/40_carriers.sql (sha256 5066bc3f194fa18bc2e7c22f689153db1b62798944c31298bc9fa41f2a65d05b)
-- Carrier callbacks (POST /functions/v1/carriers/verizon|att|tmobile), after the server checked
-- each carrier's authentication. Two kinds of news arrive:
--   * the asynchronous result of a command Wingtel sent (ThingSpace answers every provisioning
--     request with a requestId and reports the outcome later on its CarrierService callback):
--     the command is found by carrier_request_id and completed through complete_carrier_command,
--     which finalizes the line's network state or rolls the business state back;
--   * a line's state changed at the carrier (AT&T SIM_STATE_CHANGE push, ThingSpace suspension
--     status and external provisioning changes, aggregator status events): an open command
--     expecting that state is completed; otherwise the line's network_status follows the carrier
--     and the change is written to the line's history for operations to review.
--
-- Payloads, as the server passes them:
--   verizon  the JSON body: {requestId, deviceIds:[{id, kind}], deviceResponse:{…} | faultResponse:{faultcode, faultstring}, …}
--   att      the form parameters as a JSON object: {eventId, eventType, timestamp, data (XML), signature2}
--   tmobile  the JSON body: {eventId, eventType, requestId?, msisdn?, iccid?, status?, error?:{code, message}}

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
      event_type := case when correlation is not null then 'CarrierService' else 'DeviceStatus' end;
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
  select s.* into line from public.subscribers s
    join public.carriers k on k.organization_id = s.organization_id and k.id = s.carrier_id and k.adapter = route_adapter
    left join public.sim_cards c on c.organization_id = s.organization_id and c.id = s.current_sim_id
   where (device_iccid is not null and c.iccid = device_iccid) or (device_mdn is not null and s.mdn = public.normalize_mdn(device_mdn))
   order by (s.status in ('pending', 'active', 'suspended')) desc, s.created_at desc
   limit 1;
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
comment on function public.handle_carrier_event(text, jsonb, text) is 'Applies one authenticated carrier callback once: a command result correlated by the carrier''s request id (completed or rolled back), or a line state change reported by the carrier (confirms an open command, or moves network_status and notes it in the line''s history). Returns {outcome, event_id, detail}.';

revoke all on function private.carrier_network_state(text, text), private.carrier_adapter_of(text),
  public.handle_carrier_event(text, jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_carrier_event(text, jsonb, text) to service_role;

-- >>> sql/50_functions/50_outbox.sql (sha256 c464125920ddcc3780f7595d592733a450b3dcbb88ccbe5a0893ae80c5702509)
-- The outbox worker of `wingtel serve` (Sources/WingtelFunctions/Outbox). It claims only the
-- commands of carriers it has an adapter for, so a deployment without, say, AT&T credentials
-- leaves AT&T commands pending (visible in public.outbox_status) instead of burning their
-- attempts. The claim itself is claim_carrier_commands' rule: due pending commands and
-- commands whose lease ran out (their worker died), FOR UPDATE SKIP LOCKED.

create or replace function public.claim_outbox_commands(
  worker text, adapters public.carrier_adapter[], max_count integer default 10, lease interval default '60 seconds')
returns table (
  organization_id uuid, id uuid, kind public.carrier_command_kind, adapter public.carrier_adapter, payload jsonb,
  idempotency_key text, attempts integer, max_attempts integer)
language sql
security definer
set search_path = ''
as $$
  with ready as (
    select c.organization_id, c.id, k.adapter
    from public.carrier_commands c
    join public.carriers k on k.organization_id = c.organization_id and k.id = c.carrier_id
    where ((c.status = 'pending' and c.next_attempt_at <= now())
           or (c.status = 'in_flight' and c.carrier_request_id is null and c.lease_until < now()))
      and k.adapter = any (claim_outbox_commands.adapters)
    order by c.next_attempt_at, c.created_at
    limit greatest(claim_outbox_commands.max_count, 0)
    for update of c skip locked
  ), claimed as (
    update public.carrier_commands c
       set status = 'in_flight', claimed_by = claim_outbox_commands.worker,
           lease_until = now() + claim_outbox_commands.lease, attempts = c.attempts + 1
      from ready r
     where c.organization_id = r.organization_id and c.id = r.id
    returning c.organization_id, c.id, c.kind, r.adapter, c.payload, c.idempotency_key, c.attempts, c.max_attempts
  )
  select * from claimed
$$;
comment on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) is 'Takes up to max_count due commands (or commands whose lease ran out) of carriers served by the given adapters, for one worker under a lease; concurrent workers get disjoint sets. Returns what the adapter needs.';

-- What operations watch: commands by carrier and state, the oldest waiting, and the dead
-- letters with their last error.
create or replace view public.outbox_status with (security_invoker = true) as
select c.organization_id, k.code as carrier, k.adapter, c.status, count(*) as commands,
       min(c.created_at) as oldest_created_at, max(c.attempts) as max_attempts_used,
       (array_agg(c.error order by c.created_at desc) filter (where c.error is not null))[1] as latest_error
from public.carrier_commands c
join public.carriers k on k.organization_id = c.organization_id and k.id = c.carrier_id
group by c.organization_id, k.code, k.adapter, c.status;
comment on view public.outbox_status is 'Carrier commands per organization, carrier and state: how many, the oldest, the most attempts used and the latest error. Dead letters are status = dead (see carrier_commands.error for each).';

revoke all on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) from public, anon, authenticated;
grant execute on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) to service_role;
revoke all on public.outbox_status from public, anon;
grant select on public.outbox_status to authenticated, service_role;

-- >>> sql/50_functions/60_sms_outbox.sql (sha256 ed793081fa2c0b0604066199d4fb62fbaeb92a92a161f70d32f84e42e140759b)
-- The SMS outbox: outbound messages written by staff (or queued with public.send_sms) wait
-- with status accepted and no Twilio SID until the SMS sender of `wingtel serve` posts them to
-- Twilio's Messages API; Twilio's status callbacks then move them forward. TwiML replies are
-- recorded as sent and never pass through here.

create or replace function public.send_sms(organization_id uuid, to_number text, body text, account_id uuid default null)
returns public.sms_messages
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := send_sms.organization_id;
  sender text;
  message public.sms_messages;
  recipient text := coalesce(public.normalize_mdn(send_sms.to_number), send_sms.to_number);
begin
  perform private.require_role(org, 'agent');
  if nullif(btrim(send_sms.body), '') is null or length(send_sms.body) > 1600 then
    raise exception 'an SMS body has 1 to 1600 characters' using errcode = '22023';
  end if;
  if recipient !~ '^\+[1-9][0-9]{7,14}$' then
    raise exception '% is not a phone number', send_sms.to_number using errcode = '22023', hint = 'Use E.164, e.g. +13125550101.';
  end if;
  if exists (select 1 from public.sms_opt_outs o where o.organization_id = org and o.phone_number = recipient) then
    raise exception '% has opted out (STOP) of this organization''s messages', recipient using errcode = 'P0001',
      hint = 'The number must text START before it can be messaged again.';
  end if;
  select n.phone_number into sender from public.messaging_numbers n where n.organization_id = org order by n.created_at, n.id limit 1;
  if sender is null then
    raise exception 'organization % has no SMS number', org using errcode = 'P0002', hint = 'Add one to public.messaging_numbers.';
  end if;
  insert into public.sms_messages (organization_id, direction, from_number, to_number, body, status, account_id, sent_by, next_attempt_at)
  values (org, 'outbound', sender, recipient, send_sms.body, 'accepted', send_sms.account_id, auth.uid(), now())
  returning * into message;
  return message;
end;
$$;
comment on function public.send_sms(uuid, text, text, uuid) is 'Queues an SMS from the organization''s first number (agents and up, services): refused for an opted-out number. The SMS sender of `wingtel serve` posts it to Twilio.';

-- Wake the sender when a message is queued.
create or replace function private.notify_sms_outbox()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('wingtel_sms_outbox', '');
  return null;
end;
$$;
comment on function private.notify_sms_outbox() is 'Statement trigger on sms_messages: NOTIFY wingtel_sms_outbox so the SMS sender wakes for a queued message.';
create or replace trigger sms_messages_outbox after insert on public.sms_messages
  for each statement execute function private.notify_sms_outbox();

create or replace function public.claim_sms_messages(worker text, max_count integer default 20, lease interval default '60 seconds')
returns table (organization_id uuid, id uuid, from_number text, to_number text, body text, attempts integer)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Messages to numbers that opted out after they were queued are not sent.
  update public.sms_messages m set status = 'canceled', error_code = 'opted_out', next_attempt_at = null
   where m.direction = 'outbound' and m.status = 'accepted' and m.provider_sid is null
     and exists (select 1 from public.sms_opt_outs o where o.organization_id = m.organization_id and o.phone_number = m.to_number);
  return query
  with ready as (
    select m.organization_id, m.id from public.sms_messages m
    where m.direction = 'outbound' and m.status = 'accepted' and m.provider_sid is null
      and coalesce(m.next_attempt_at, m.created_at) <= now() and (m.lease_until is null or m.lease_until < now())
    order by coalesce(m.next_attempt_at, m.created_at)
    limit greatest(claim_sms_messages.max_count, 0)
    for update skip locked
  )
  update public.sms_messages m
     set lease_until = now() + claim_sms_messages.lease, attempts = m.attempts + 1
    from ready r
   where m.organization_id = r.organization_id and m.id = r.id
  returning m.organization_id, m.id, m.from_number, m.to_number, m.body, m.attempts;
end;
$$;
comment on function public.claim_sms_messages(text, integer, interval) is 'Takes up to max_count queued outbound messages for one sender under a lease (SKIP LOCKED); cancels those whose recipient has opted out.';

create or replace function public.finish_sms_message(
  organization_id uuid, id uuid, provider_sid text default null, status public.sms_status default 'queued',
  error_code text default null, retry_after interval default null)
returns public.sms_messages
language plpgsql
security definer
set search_path = ''
as $$
declare
  message public.sms_messages;
begin
  select m.* into message from public.sms_messages m
   where m.organization_id = finish_sms_message.organization_id and m.id = finish_sms_message.id for update;
  if message.id is null then
    raise exception 'there is no SMS % in this organization', finish_sms_message.id using errcode = 'P0002';
  end if;
  if finish_sms_message.provider_sid is not null then
    -- Twilio took it.
    update public.sms_messages m set provider_sid = finish_sms_message.provider_sid, status = finish_sms_message.status, lease_until = null,
           next_attempt_at = null
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  elsif finish_sms_message.retry_after is not null and message.attempts < 5 then
    update public.sms_messages m set lease_until = null, error_code = finish_sms_message.error_code,
           next_attempt_at = now() + greatest(finish_sms_message.retry_after, least(power(2, message.attempts), 300) * interval '1 second')
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  else
    update public.sms_messages m set status = 'failed', error_code = coalesce(finish_sms_message.error_code, 'send_failed'), lease_until = null,
           next_attempt_at = null
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  end if;
  return message;
end;
$$;
comment on function public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval) is 'The SMS sender''s outcome: Twilio''s SID and status; or, with retry_after, try again later (at most 5 attempts, backoff 2^n s up to 5 min); else failed with Twilio''s error code.';

revoke all on function public.send_sms(uuid, text, text, uuid), public.claim_sms_messages(text, integer, interval),
  public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval), private.notify_sms_outbox() from public, anon, authenticated;
grant execute on function public.send_sms(uuid, text, text, uuid) to authenticated, service_role;
grant execute on function public.claim_sms_messages(text, integer, interval),
  public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval) to service_role;

-- >>> sql/50_functions/70_scheduler.sql (sha256 8c031de5f955d3765b8b29dada1aeeeef1f096b36cb390a17f1bbc3d48f424df)
-- The scheduler of `wingtel serve` (Sources/WingtelFunctions/Outbox/Scheduler.swift). Every
-- few minutes it asks which jobs are due and runs each in a transaction of its own:
--   bill_run       run_bill_cycle for the organization's current month: bills the accounts whose
--                  billing day has come (a re-run changes nothing), daily from 02:00 local time;
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
  cross join (values ('bill_run', time '02:00'), ('dunning', time '06:00')) as j (job, not_before)
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
comment on function public.run_scheduled_job(text, uuid, date, timestamptz) is 'Runs one claimed daily job (bill_run, dunning) as the scheduler and records its result; on error nothing of it stays (the scheduler then calls fail_scheduled_job).';

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

-- >>> sql/50_functions/90_access.sql (sha256 1ab710870a8a2fdb95762b872e9949884ed104ec52504e18affe64cac372cf87)
-- Who reads SMS: staff of the organization read conversations, numbers and opt-outs; agents
-- and up answer (an outbound message an agent writes is queued for the outbox); admins manage
-- the organization's numbers. Customers read their own account's conversation. The webhooks
-- write as service_role.

revoke all on public.messaging_numbers, public.sms_messages, public.sms_opt_outs from anon, authenticated;
grant select on public.messaging_numbers, public.sms_messages, public.sms_opt_outs to authenticated;
grant insert, update, delete on public.messaging_numbers to authenticated;
grant insert on public.sms_messages to authenticated;
grant all on public.messaging_numbers, public.sms_messages, public.sms_opt_outs to service_role;
grant select on public.care_inbox to authenticated;
grant select on public.care_inbox to service_role;

drop policy if exists "Members can view messaging numbers" on public.messaging_numbers;
create policy "Members can view messaging numbers" on public.messaging_numbers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage messaging numbers" on public.messaging_numbers;
create policy "Admins manage messaging numbers" on public.messaging_numbers for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and the customer can view messages" on public.sms_messages;
create policy "Members and the customer can view messages" on public.sms_messages for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
-- An agent's answer: outbound, queued, signed by the agent, from one of the organization's numbers, not to an opted-out number.
drop policy if exists "Agents write outbound messages" on public.sms_messages;
create policy "Agents write outbound messages" on public.sms_messages for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[])
              and direction = 'outbound' and status = 'accepted' and provider_sid is null and sent_by = (select auth.uid())
              and exists (select 1 from public.messaging_numbers n
                          where n.organization_id = sms_messages.organization_id and n.phone_number = sms_messages.from_number)
              and not exists (select 1 from public.sms_opt_outs o
                              where o.organization_id = sms_messages.organization_id and o.phone_number = sms_messages.to_number));

drop policy if exists "Members can view opt-outs" on public.sms_opt_outs;
create policy "Members can view opt-outs" on public.sms_opt_outs for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

create or replace trigger sms_messages_touch before update on public.sms_messages
  for each row execute function private.touch_updated_at();

select audit.enable('public.messaging_numbers', 'operations');
select audit.enable('public.sms_opt_outs', 'customer_care', key_columns => array['organization_id', 'phone_number']);
