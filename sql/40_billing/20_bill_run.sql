-- The bill run. run_bill_cycle(organization, billing month) invoices every account whose
-- cycle in that month has started (billing day d: the cycle starts on day d), once: an
-- account with an invoice for the month is skipped, so a re-run changes nothing and a daily
-- scheduled run bills each account on its billing day. One transaction: a failure leaves
-- no invoice, line, ledger entry or used number behind.
--
-- An invoice for billing month M and cycle C = [start, start + 1 month) holds
--   * recurring plan charges and monthly add-ons for C, in advance (subscriptions in effect at C's start);
--   * one-off add-ons bought during the previous cycle P, and pending one-off charges and credits;
--   * prorations for P, by days (when P was billed in advance): the unused days of the plan billed
--     for P are credited, days on other plans are charged. Amount = round(price x days / days of P);
--   * usage overage for P (rating, in arrears);
--   * usage re-rated for the cycle before P, when late records changed it after its invoice;
--   * discounts on the recurring charges; then taxes and fees per jurisdiction (private.compute_taxes).
-- Every line is rounded once, to whole cents, half away from zero; totals are sums of lines.
-- An invoice whose total is negative is paid at once and its credit goes to the wallet.

create or replace function private.compute_taxes(organization_id uuid, provider text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  -- The tax-provider interface: read pg_temp.bill_accounts (jurisdiction of each account) and
  -- pg_temp.bill_lines (the untaxed lines), add one 'tax' line per tax or fee. A provider such
  -- as CCH SureTax plugs in here as another branch fed by its adapter; 'rate_table' uses tax_rates.
  if provider <> 'rate_table' then
    raise exception 'unknown tax provider %', provider using errcode = '22023', hint = 'Set billing_policies.tax_provider to rate_table.';
  end if;
  -- Each account's taxable base per rate, by one hash join and aggregate over the accounts'
  -- charge kinds (a look-up per account and rate went through a temporary index: at a million
  -- accounts that index outgrew the session's temp_buffers and every probe went to disk).
  insert into pg_temp.bill_lines (account_id, subscriber_id, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end, tax_rate_id, jurisdiction)
  select g.account_id, null, 'tax',
         g.name || case when g.percent is not null then ' (' || trim(trailing '.' from trim(trailing '0' from g.percent::text)) || '%)' else '' end,
         case when g.percent is not null then g.amount else g.lines end,
         case when g.percent is not null then 'cents' else 'line' end,
         coalesce(g.percent / 100, g.per_line_cents),
         case when g.percent is not null then round(g.amount * g.percent / 100)::bigint else g.per_line_cents * g.lines end,
         g.cycle_start, g.cycle_end, g.id, concat_ws(', ', g.county, g.state, g.country)
  from (
    -- Grouped by the account and the rate's primary key: the rate's other columns come with it.
    select b.account_id, b.cycle_start, b.cycle_end, t.id, t.name, t.percent, t.per_line_cents, t.county, t.state, t.country,
           coalesce(sum(k.amount) filter (where k.kind = any (t.applies_to)), 0) as amount, coalesce(max(k.lines), 0) as lines
    from pg_temp.bill_accounts b
    join public.tax_rates t on t.organization_id = compute_taxes.organization_id and t.country = b.country
     and (t.state is null or t.state = b.state) and (t.county is null or lower(t.county) = lower(b.county))
     and t.effective @> b.cycle_start
    left join pg_temp.bill_kinds k on k.account_id = b.account_id
    group by b.account_id, t.organization_id, t.id) g
  where (g.percent is not null and g.amount <> 0) or (g.per_line_cents is not null and g.lines > 0 and g.per_line_cents > 0);
end;
$$;
comment on function private.compute_taxes(uuid, text) is 'Tax-provider interface of the bill run: adds tax and fee lines to pg_temp.bill_lines for the accounts of pg_temp.bill_accounts (rate_table: percentages of the charge kinds a rate applies to, or an amount per billed line).';
revoke all on function private.compute_taxes(uuid, text) from public;

create or replace function public.run_bill_cycle(organization_id uuid, billing_month date, as_of timestamptz default now())
returns public.bill_runs
language plpgsql
security definer
set search_path = ''
-- The invoice lines are numbered and the ledger grouped by sorting millions of rows: at 256MB
-- both sorts spilled (360 and 200 MB to disk at a million lines), with the default 4MB much
-- more. Measured at 1M lines: 212 s -> 187 s with 1GB; 100k lines need no more than 256MB.
-- Memory is taken only as an organization's size needs it.
set work_mem = '1GB'
as $$
declare
  org uuid := run_bill_cycle.organization_id;
  month date := run_bill_cycle.billing_month;
  previous_month date := (run_bill_cycle.billing_month - interval '1 month')::date;
  zone text;
  money char(3);
  today date;
  policy public.billing_policies;
  run public.bill_runs;
  latest date;
  billed_before boolean;
  first_number bigint;
  id_prefix text;
  invoice_count integer;
  due_count integer;
begin
  perform private.require_role(org, 'operator');
  if month is null or month <> date_trunc('month', month)::date then
    raise exception 'a bill run is for a whole month: give its first day, not %', month using errcode = '22023',
      hint = 'For November 2026 pass 2026-11-01 (wingtel bill run --period 2026-11).';
  end if;
  select o.time_zone, o.currency into zone, money from public.organizations o where o.id = org;
  if zone is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  today := (run_bill_cycle.as_of at time zone zone)::date;
  if month > today then
    raise exception 'billing month % has not started (it is % in %)', to_char(month, 'YYYY-MM'), today, zone using errcode = '22023';
  end if;

  -- One run per organization at a time: a second waits, then finds the accounts billed.
  perform pg_advisory_xact_lock(hashtext('wingtel.bill_run'), hashtext(org::text));
  select max(i.billing_month) into latest from public.invoices i where i.organization_id = org;
  if latest > month then
    raise exception 'billing month % is closed: % has been billed already', to_char(month, 'YYYY-MM'), to_char(latest, 'YYYY-MM')
      using errcode = '22023', hint = 'Correct a closed month with a credit note or a one-off charge on the next invoice.';
  end if;
  billed_before := exists (select 1 from public.invoices i where i.organization_id = org and i.billing_month = previous_month);

  -- Usage batches whose roll-up is still pending (their loader stopped between its two steps)
  -- go into the daily rollups first: rating reads those.
  perform public.roll_up_usage(org);

  insert into public.billing_policies (organization_id) values (org) on conflict do nothing;
  insert into public.bill_runs (organization_id, billing_month, as_of) values (org, month, run_bill_cycle.as_of) returning * into run;

  -- The accounts to bill: their cycle of this month has started and they have no invoice for it.
  drop table if exists pg_temp.bill_accounts, pg_temp.bill_lines, pg_temp.bill_kinds, pg_temp.bill_invoices;
  create temporary table bill_accounts on commit drop as
  select a.id as account_id, a.name, a.state, a.county, a.country,
         c.cycle_start, (c.cycle_start + interval '1 month')::date as cycle_end, (c.cycle_start - interval '1 month')::date as previous_start,
         c.cycle_start::timestamp at time zone zone as start_ts,
         (c.cycle_start + interval '1 month')::timestamp at time zone zone as end_ts,
         (c.cycle_start - interval '1 month')::timestamp at time zone zone as previous_ts,
         exists (select 1 from public.invoices i where i.organization_id = org and i.account_id = a.id and i.billing_month = previous_month) as billed_previous
  from public.accounts a
  cross join lateral (select (month + (a.billing_day - 1))::date as cycle_start) c
  where a.organization_id = org and c.cycle_start <= today
    and not exists (select 1 from public.invoices i where i.organization_id = org and i.account_id = a.id and i.billing_month = month);
  get diagnostics due_count = row_count;
  alter table pg_temp.bill_accounts add primary key (account_id);
  analyze pg_temp.bill_accounts;

  create temporary table bill_lines (
    account_id uuid not null,
    subscriber_id uuid,
    mdn text,
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
    charge_id uuid
  ) on commit drop;

  -- Recurring plan charges, in advance.
  insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end, plan_id)
  select b.account_id, l.id, l.mdn, 'recurring', p.name, 1, 'month', p.price_cents, p.price_cents, b.cycle_start, b.cycle_end, p.id
  from pg_temp.bill_accounts b
  join public.subscribers l on l.organization_id = org and l.account_id = b.account_id
  join public.subscriptions s on s.organization_id = org and s.subscriber_id = l.id and s.effective @> b.start_ts
  join public.plans p on p.organization_id = org and p.id = s.plan_id;

  -- Add-ons: monthly ones in advance, one-off ones bought during the previous cycle.
  insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end)
  select b.account_id, l.id, l.mdn, 'add_on', ao.name, 1, case ao.recurrence when 'monthly' then 'month' else 'each' end,
         ao.price_cents, ao.price_cents,
         case ao.recurrence when 'monthly' then b.cycle_start else (lower(sa.effective) at time zone zone)::date end,
         case ao.recurrence when 'monthly' then b.cycle_end else b.cycle_start end
  from pg_temp.bill_accounts b
  join public.subscribers l on l.organization_id = org and l.account_id = b.account_id
  join public.subscriber_add_ons sa on sa.organization_id = org and sa.subscriber_id = l.id
  join public.add_ons ao on ao.organization_id = org and ao.id = sa.add_on_id
  where (ao.recurrence = 'monthly' and sa.effective @> b.start_ts)
     or (ao.recurrence = 'one_off' and lower(sa.effective) >= b.previous_ts and lower(sa.effective) < b.start_ts);

  -- Prorations of the previous cycle, when it was billed in advance (billing was running then).
  if billed_before then
    with segments as (
      select b.account_id, l.id as subscriber_id, l.mdn, s.plan_id, b.previous_start, b.cycle_start,
             (greatest(lower(s.effective), b.previous_ts) at time zone zone)::date as seg_from,
             (least(coalesce(upper(s.effective), 'infinity'), b.start_ts) at time zone zone)::date as seg_to
      from pg_temp.bill_accounts b
      join public.subscribers l on l.organization_id = org and l.account_id = b.account_id
      join public.subscriptions s on s.organization_id = org and s.subscriber_id = l.id
       and s.effective && tstzrange(b.previous_ts, b.start_ts, '[)')
    ), billed as (
      select b.account_id, il.subscriber_id, il.plan_id, il.unit_price_cents as price, p.name as description
      from pg_temp.bill_accounts b
      join public.invoices i on i.organization_id = org and i.account_id = b.account_id and i.billing_month = previous_month
      join public.invoice_lines il on il.organization_id = org and il.invoice_id = i.id and il.kind = 'recurring'
      join public.plans p on p.organization_id = org and p.id = il.plan_id
    ), covered as (
      select g.subscriber_id, g.plan_id, sum(greatest(g.seg_to - g.seg_from, 0)) as days
      from segments g group by g.subscriber_id, g.plan_id
    ), credits as (
      -- The plan billed for P, for the days of P it was not in effect.
      select bl.account_id, bl.subscriber_id, bl.plan_id, bl.price, bl.description, b.previous_start, b.cycle_start,
             (b.cycle_start - b.previous_start) as period_days,
             (b.cycle_start - b.previous_start) - coalesce(v.days, 0) as unused_days
      from billed bl join pg_temp.bill_accounts b on b.account_id = bl.account_id
      left join covered v on v.subscriber_id = bl.subscriber_id and v.plan_id = bl.plan_id
    )
    insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end, plan_id)
    select c.account_id, c.subscriber_id, l.mdn, 'proration'::public.charge_kind,
           format('Unused %s, %s of %s days', c.description, c.unused_days, c.period_days),
           c.unused_days, 'day', round(c.price / c.period_days, 4), -round(c.price * c.unused_days / c.period_days)::bigint,
           c.previous_start, c.cycle_start, c.plan_id
    from credits c join public.subscribers l on l.organization_id = org and l.id = c.subscriber_id
    where c.unused_days > 0 and (select p.credit_unused_days from public.billing_policies p where p.organization_id = org)
    union all
    select g.account_id, g.subscriber_id, g.mdn, 'proration',
           format('%s, %s of %s days from %s', p.name, g.seg_to - g.seg_from, g.cycle_start - g.previous_start, g.seg_from),
           g.seg_to - g.seg_from, 'day', round(p.price_cents::numeric / (g.cycle_start - g.previous_start), 4),
           round(p.price_cents::numeric * (g.seg_to - g.seg_from) / (g.cycle_start - g.previous_start))::bigint,
           g.seg_from, g.seg_to, g.plan_id
    from segments g join public.plans p on p.organization_id = org and p.id = g.plan_id
    where g.seg_to > g.seg_from
      and not exists (select 1 from billed bl where bl.subscriber_id = g.subscriber_id and bl.plan_id = g.plan_id);
  end if;

  -- Usage of the previous cycle, in arrears.
  insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end)
  select r.account_id, r.subscriber_id, r.mdn, 'usage', u.label, u.quantity, u.unit, u.amount / u.quantity, u.amount, r.cycle_start, r.cycle_end
  from private.rate_cycles(org, previous_month) r
  join pg_temp.bill_accounts b on b.account_id = r.account_id
  cross join lateral (values
    (case when r.subscriber_id is null then 'Shared data overage' else 'Data overage' end, r.data_overage_gb, 'GB', r.data_overage_cents),
    ('Voice overage', r.voice_overage_minutes, 'minute', r.voice_overage_cents),
    ('SMS overage', r.sms_overage, 'message', r.sms_overage_cents)) as u (label, quantity, unit, amount)
  where u.amount > 0;

  -- Late usage: the cycle before the previous one, re-rated, against what its invoice charged.
  if billed_before then
    insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end)
    select r.account_id, r.subscriber_id, r.mdn, 'usage_adjustment',
           format('Usage re-rated for %s to %s (late records)', r.cycle_start, r.cycle_end - 1), 1, 'each',
           r.amount - coalesce(c.charged, 0), r.amount - coalesce(c.charged, 0), r.cycle_start, r.cycle_end
    from (select x.account_id, x.subscriber_id, x.mdn, x.cycle_start, x.cycle_end,
                 x.data_overage_cents + x.voice_overage_cents + x.sms_overage_cents as amount
          from private.rate_cycles(org, (previous_month - interval '1 month')::date) x) r
    join pg_temp.bill_accounts b on b.account_id = r.account_id and b.billed_previous
    left join (
      -- What was charged for those cycles. A cycle of the month before the previous one is
      -- invoiced in arrears by the previous month's invoice and re-rated only by this month's run
      -- (one cycle of look-back), which has not invoiced these accounts: the previous month's
      -- invoices hold every such line. Summed in one pass and joined by hash (a look-up per line
      -- was a few index probes each, a cache miss apiece at a million lines).
      select i.account_id, il.subscriber_id, il.service_start, sum(il.amount_cents) as charged
      from pg_temp.bill_accounts pb
      join public.invoices i on i.organization_id = org and i.account_id = pb.account_id and i.billing_month = previous_month
      join public.invoice_lines il on il.organization_id = org and il.invoice_id = i.id
      where pb.billed_previous and il.kind in ('usage', 'usage_adjustment')
      group by 1, 2, 3) c
      on c.account_id = r.account_id and c.service_start = r.cycle_start
     -- A pooled account's line has no subscriber: null matches null.
     and coalesce(c.subscriber_id, '00000000-0000-0000-0000-000000000000') = coalesce(r.subscriber_id, '00000000-0000-0000-0000-000000000000')
    where r.amount <> coalesce(c.charged, 0);
  end if;

  -- Pending one-off charges and credits.
  insert into pg_temp.bill_lines (account_id, subscriber_id, mdn, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end, charge_id)
  select ch.account_id, ch.subscriber_id, l.mdn, ch.kind, ch.description, 1, 'each', ch.amount_cents, ch.amount_cents, ch.charge_on, ch.charge_on, ch.id
  from public.account_charges ch
  join pg_temp.bill_accounts b on b.account_id = ch.account_id
  left join public.subscribers l on l.organization_id = org and l.id = ch.subscriber_id
  where ch.organization_id = org and ch.invoice_id is null and ch.charge_on <= today;

  -- Discounts on the recurring charges of the cycle.
  analyze pg_temp.bill_lines;
  insert into pg_temp.bill_lines (account_id, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end)
  select d.account_id, 'discount', d.description, 1, 'each', -a.amount, -a.amount, b.cycle_start, b.cycle_end
  from public.account_discounts d
  join pg_temp.bill_accounts b on b.account_id = d.account_id
  join (select x.account_id, sum(x.amount_cents) as recurring from pg_temp.bill_lines x
        where x.kind = 'recurring' group by x.account_id) r on r.account_id = d.account_id
  cross join lateral (select case when d.percent_off is not null then round(r.recurring * d.percent_off / 100)::bigint
                                  else least(d.amount_off_cents, r.recurring) end as amount) a
  where d.organization_id = org and d.starts_on <= b.cycle_start and (d.ends_on is null or b.cycle_start < d.ends_on)
    and r.recurring > 0 and a.amount > 0;

  -- Taxes and fees, through the tax-provider interface.
  create temporary table bill_kinds on commit drop as
  select k.account_id, k.kind, k.amount, n.lines
  from (select x.account_id, x.kind, sum(x.amount_cents) as amount from pg_temp.bill_lines x group by x.account_id, x.kind) k
  join (select x.account_id, count(distinct x.subscriber_id) filter (where x.kind = 'recurring') as lines
        from pg_temp.bill_lines x group by x.account_id) n on n.account_id = k.account_id;
  analyze pg_temp.bill_kinds;
  select p.* into policy from public.billing_policies p where p.organization_id = org;
  perform private.compute_taxes(org, policy.tax_provider);

  analyze pg_temp.bill_lines;
  -- Accounts with nothing to bill get no invoice (and use no number).
  delete from pg_temp.bill_accounts b where not exists (select 1 from pg_temp.bill_lines x where x.account_id = b.account_id);

  -- Gapless numbers: the policy row stays locked until commit, so concurrent runs number one after the other.
  select p.next_invoice_number into first_number from public.billing_policies p where p.organization_id = org for update;
  -- Invoice ids are time-ordered (UUIDv7 layout: the run's prefix, then the number), so the
  -- invoices, their lines and their ledger entries append to their indexes in number order and
  -- the lines' foreign-key checks read the pages just written, not random ones: at a million
  -- accounts random ids made every insert and check a cache miss.
  id_prefix := private.ordered_id_prefix();
  create temporary table bill_invoices on commit drop as
  select (id_prefix || lpad(to_hex(n.number), 12, '0'))::uuid as id, n.*
  from (
  select first_number + row_number() over (order by b.cycle_start, b.name, b.account_id) - 1 as number,
         b.account_id, b.cycle_start, b.cycle_end, concat_ws(', ', b.county, b.state, b.country) as jurisdiction,
         coalesce(sum(x.amount_cents) filter (where x.kind not in ('discount', 'tax')), 0)::bigint as subtotal,
         coalesce(sum(x.amount_cents) filter (where x.kind = 'discount'), 0)::bigint as discount,
         coalesce(sum(x.amount_cents) filter (where x.kind = 'tax'), 0)::bigint as tax
  from pg_temp.bill_accounts b join pg_temp.bill_lines x on x.account_id = b.account_id
  group by b.account_id, b.cycle_start, b.cycle_end, b.name, b.county, b.state, b.country) n;
  get diagnostics invoice_count = row_count;
  analyze pg_temp.bill_invoices;
  update public.billing_policies p set next_invoice_number = first_number + invoice_count
   where p.organization_id = org and invoice_count > 0;

  insert into public.invoices (organization_id, id, number, display_number, account_id, bill_run_id, billing_month, period_start, period_end,
                               issued_on, due_on, currency, jurisdiction, subtotal_cents, discount_cents, tax_cents, total_cents, status)
  select org, v.id, v.number, policy.invoice_prefix || lpad(v.number::text, 6, '0'), v.account_id, run.id, month, v.cycle_start, v.cycle_end,
         today, today + policy.payment_terms_days, money, v.jurisdiction, v.subtotal, v.discount, v.tax,
         v.subtotal + v.discount + v.tax, case when v.subtotal + v.discount + v.tax <= 0 then 'paid' else 'open' end::public.invoice_status
  from pg_temp.bill_invoices v
  order by v.number;
  -- Lines check their invoice (foreign key) one by one: with statistics that still describe a
  -- small invoices table the check would scan it for every line.
  if invoice_count > 1000 then
    analyze public.invoices;
  end if;

  insert into public.invoice_lines (organization_id, invoice_id, line_number, subscriber_id, kind, description, quantity, unit, unit_price_cents,
                                    amount_cents, service_start, service_end, plan_id, tax_rate_id, jurisdiction)
  select org, v.id,
         -- An enum sorts in its declared order (recurring, proration, …, tax); enum_range per row
         -- read the catalog three times a line.
         row_number() over (partition by v.id order by x.subscriber_id is null, x.mdn, x.subscriber_id,
                            x.kind, x.service_start, x.description),
         x.subscriber_id, x.kind, case when x.mdn is not null then x.description || ' · ' || x.mdn else x.description end,
         x.quantity, x.unit, x.unit_price_cents, x.amount_cents, x.service_start, x.service_end, x.plan_id, x.tax_rate_id, x.jurisdiction
  from pg_temp.bill_lines x join pg_temp.bill_invoices v on v.account_id = x.account_id
  order by v.id;  -- the numbering's own sort order: no second sort

  -- Ledger: the receivable against revenue by kind, discounts and the tax owed per jurisdiction.
  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, jurisdiction)
  select org, e.invoice_id, 'invoice', e.ledger_account, e.amount, e.account_id, e.invoice_id, e.jurisdiction
  from (
    select v.id as invoice_id, v.account_id, 'accounts_receivable'::public.ledger_account as ledger_account,
           v.subtotal + v.discount + v.tax as amount, null::text as jurisdiction
    from pg_temp.bill_invoices v
    union all
    select v.id, v.account_id,
           case when x.kind in ('recurring', 'proration', 'add_on') then 'revenue_recurring'
                when x.kind in ('usage', 'usage_adjustment') then 'revenue_usage'
                when x.kind in ('one_off', 'credit') then 'revenue_one_off'
                when x.kind = 'discount' then 'discounts'
                else 'tax_payable' end::public.ledger_account,
           -sum(x.amount_cents)::bigint, case when x.kind = 'tax' then x.jurisdiction else v.jurisdiction end
    from pg_temp.bill_lines x join pg_temp.bill_invoices v on v.account_id = x.account_id
    group by 1, 2, 3, 5
  ) e
  where e.amount <> 0
  order by e.invoice_id;

  update public.account_charges ch set invoice_id = v.id
    from pg_temp.bill_lines x join pg_temp.bill_invoices v on v.account_id = x.account_id
   where x.charge_id is not null and ch.organization_id = org and ch.id = x.charge_id;

  -- An invoice that comes out negative (a cancellation credit larger than the new charges, say)
  -- owes nothing: its credit moves to the account's wallet, which pays what is still open.
  perform 1 from public.accounts a
   where a.organization_id = org and a.id in (select v.account_id from pg_temp.bill_invoices v where v.subtotal + v.discount + v.tax < 0)
   order by a.id for update;
  with negative as materialized (
    select v.id, v.account_id, v.number, -(v.subtotal + v.discount + v.tax) as credit, gen_random_uuid() as transaction_id
    from pg_temp.bill_invoices v where v.subtotal + v.discount + v.tax < 0
  ), moved as (
    insert into public.wallet_transactions (organization_id, account_id, kind, amount_cents, balance_after_cents, invoice_id, description)
    select org, n.account_id, 'credit', n.credit, private.wallet_balance(org, n.account_id) + n.credit, n.id,
           'Credit from invoice ' || policy.invoice_prefix || lpad(n.number::text, 6, '0')
    from negative n
    returning 1
  )
  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id)
  select org, n.transaction_id, 'wallet', e.ledger_account, e.amount, n.account_id, e.invoice_id
  from negative n
  cross join lateral (values ('accounts_receivable'::public.ledger_account, n.credit, n.id),
                             ('wallet_liability'::public.ledger_account, -n.credit, null::uuid)) e (ledger_account, amount, invoice_id);

  if policy.apply_wallet_to_invoices then
    perform private.apply_wallets(org, array(
      select i.id from public.invoices i
      where i.organization_id = org and i.status in ('open', 'past_due')
        and i.account_id in (select v.account_id from pg_temp.bill_invoices v)
        and exists (select 1 from public.wallet_transactions w where w.organization_id = org and w.account_id = i.account_id)));
  end if;

  update public.bill_runs r
     set finished_at = clock_timestamp(), accounts_due = due_count, invoices_created = invoice_count,
         first_invoice_number = case when invoice_count > 0 then first_number end,
         last_invoice_number = case when invoice_count > 0 then first_number + invoice_count - 1 end,
         total_cents = coalesce((select sum(v.subtotal + v.discount + v.tax) from pg_temp.bill_invoices v), 0),
         tax_cents = coalesce((select sum(v.tax) from pg_temp.bill_invoices v), 0)
   where r.organization_id = org and r.id = run.id
  returning r.* into run;
  return run;
end;
$$;
comment on function public.run_bill_cycle(uuid, date, timestamptz) is 'Bills the organization''s accounts for a billing month (operators and services): every account whose cycle of the month has started and that has no invoice for it. Invoices, lines, ledger and wallet use in one transaction; re-running changes nothing. Returns the run with its counts and invoice numbers.';
revoke all on function public.run_bill_cycle(uuid, date, timestamptz) from public, anon;
grant execute on function public.run_bill_cycle(uuid, date, timestamptz) to authenticated, service_role;
