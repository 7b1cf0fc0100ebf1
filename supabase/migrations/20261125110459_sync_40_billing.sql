-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/40_billing/10_rating.sql (sha256 51345be09fd23d17f9f447018a2dd5b04021290c542df216070da90634d4552e)
-- Rating: usage of a billing cycle against the allowances of the line's plan, data packs
-- and pools, priced at the plan's overage rates. Set-based over every account of the
-- organization; the bill run rates the cycle before the invoiced one (usage in arrears) and
-- re-rates the one before that (late records).
--
-- Cycles: an account with billing day d has, for billing month M, the cycle
-- [M + (d - 1) days, one month later) in the organization's time zone. Usage is read from
-- usage_daily (per local day, maintained by ingestion in the same transaction as the records).
-- Units: 1 MB = 1,048,576 bytes, 1 GB = 1,024 MB (plans state allowances in MB). Overage is
-- charged per started GB, per started minute of the cycle's total voice seconds over the
-- allowance, per message. The plan that rates a cycle is the one in effect at its end (an
-- upgrade gets the new allowance at once; a downgrade takes effect at a cycle boundary).
-- A null allowance is unlimited. A line without a subscription in the cycle is not rated.

create or replace function private.rate_cycles(organization_id uuid, billing_month date)
returns table (
  account_id uuid,
  subscriber_id uuid,
  mdn text,
  plan_id uuid,
  pooled boolean,
  cycle_start date,
  cycle_end date,
  data_bytes bigint,
  voice_seconds bigint,
  sms_count bigint,
  data_allowance_bytes numeric,
  voice_allowance_seconds bigint,
  sms_allowance bigint,
  data_overage_gb bigint,
  voice_overage_minutes bigint,
  sms_overage bigint,
  data_overage_cents bigint,
  voice_overage_cents bigint,
  sms_overage_cents bigint)
language sql
stable
set search_path = ''
as $$
  with org as (
    select o.id, o.time_zone as zone from public.organizations o where o.id = rate_cycles.organization_id
  ), cycles as (
    select a.id as account_id, (rate_cycles.billing_month + (a.billing_day - 1))::date as cycle_start,
           ((rate_cycles.billing_month + (a.billing_day - 1)) + interval '1 month')::date as cycle_end, org.zone
    from public.accounts a cross join org
    where a.organization_id = org.id
  ), bounds as (
    select c.*, c.cycle_start::timestamp at time zone c.zone as start_ts, c.cycle_end::timestamp at time zone c.zone as end_ts
    from cycles c
  ), lines as (
    -- Each line with a subscription in the cycle, rated by its last plan of the cycle.
    select distinct on (s.subscriber_id) b.account_id, s.subscriber_id, l.mdn, s.plan_id, b.cycle_start, b.cycle_end, b.start_ts, b.end_ts
    from bounds b
    join public.subscribers l on l.organization_id = rate_cycles.organization_id and l.account_id = b.account_id
    join public.subscriptions s on s.organization_id = rate_cycles.organization_id and s.subscriber_id = l.id
      and s.effective && tstzrange(b.start_ts, b.end_ts, '[)')
    order by s.subscriber_id, lower(s.effective) desc
  ), used as (
    -- From the rollups of the month's window, joined by hash to the lines' accounts and cycles
    -- (never one index probe per line: at a million lines that reads the index a million times).
    select d.subscriber_id, sum(d.data_bytes)::bigint as data_bytes, sum(d.voice_seconds)::bigint as voice_seconds,
           sum(d.sms_count)::bigint as sms_count
    from public.usage_daily d
    join public.subscribers l on l.organization_id = rate_cycles.organization_id and l.id = d.subscriber_id
    join cycles c on c.account_id = l.account_id
    where d.organization_id = rate_cycles.organization_id
      and d.day >= rate_cycles.billing_month and d.day < rate_cycles.billing_month + interval '2 months'
      and d.day >= c.cycle_start and d.day < c.cycle_end
    group by d.subscriber_id
  ), packs as (
    -- Data packs: a one-off pack counts in the cycle it was bought in, a monthly one in each cycle it overlaps.
    select sa.subscriber_id, sum(ao.data_mb)::bigint as pack_mb
    from lines l
    join public.subscriber_add_ons sa on sa.organization_id = rate_cycles.organization_id and sa.subscriber_id = l.subscriber_id
      and sa.effective && tstzrange(l.start_ts, l.end_ts, '[)')
    join public.add_ons ao on ao.organization_id = rate_cycles.organization_id and ao.id = sa.add_on_id and ao.data_mb is not null
    where ao.recurrence = 'monthly' or (lower(sa.effective) >= l.start_ts and lower(sa.effective) < l.end_ts)
    group by sa.subscriber_id
  ), rated as (
    select l.account_id, l.subscriber_id, l.mdn, l.plan_id, p.pooled_data as pooled, l.cycle_start, l.cycle_end,
           coalesce(u.data_bytes, 0) as data_bytes, coalesce(u.voice_seconds, 0) as voice_seconds, coalesce(u.sms_count, 0) as sms_count,
           case when p.data_mb is not null then (p.data_mb + coalesce(k.pack_mb, 0))::numeric * 1048576 end as data_allowance_bytes,
           p.voice_minutes::bigint * 60 as voice_allowance_seconds, p.sms::bigint as sms_allowance,
           p.overage_data_cents_per_gb, p.overage_voice_cents_per_minute, p.overage_sms_cents
    from lines l
    join public.plans p on p.organization_id = rate_cycles.organization_id and p.id = l.plan_id
    left join used u on u.subscriber_id = l.subscriber_id
    left join packs k on k.subscriber_id = l.subscriber_id
  ), per_line as (
    select r.*,
           case when r.pooled or r.data_allowance_bytes is null then 0
                else ceil(greatest(r.data_bytes - r.data_allowance_bytes, 0) / 1073741824.0)::bigint end as data_over,
           case when r.voice_allowance_seconds is null then 0
                else ceil(greatest(r.voice_seconds - r.voice_allowance_seconds, 0) / 60.0)::bigint end as voice_over,
           case when r.sms_allowance is null then 0 else greatest(r.sms_count - r.sms_allowance, 0) end as sms_over
    from rated r
  ), pools as (
    -- One pool per account: the sum of its pooled lines' allowances (unlimited if any is),
    -- charged at the lowest overage rate among them.
    select r.account_id, min(r.cycle_start) as cycle_start, min(r.cycle_end) as cycle_end, sum(r.data_bytes)::bigint as data_bytes,
           case when bool_and(r.data_allowance_bytes is not null) then sum(r.data_allowance_bytes) end as allowance,
           min(r.overage_data_cents_per_gb) as rate
    from rated r where r.pooled
    group by r.account_id
  )
  select p.account_id, p.subscriber_id, p.mdn, p.plan_id, p.pooled, p.cycle_start, p.cycle_end, p.data_bytes, p.voice_seconds, p.sms_count,
         p.data_allowance_bytes, p.voice_allowance_seconds, p.sms_allowance, p.data_over, p.voice_over, p.sms_over,
         p.data_over * p.overage_data_cents_per_gb, p.voice_over * p.overage_voice_cents_per_minute, p.sms_over * p.overage_sms_cents
  from per_line p
  union all
  select o.account_id, null, null, null, true, o.cycle_start, o.cycle_end, o.data_bytes, 0, 0, o.allowance, null, null,
         over_gb, 0, 0, over_gb * o.rate, 0, 0
  from pools o
  cross join lateral (select case when o.allowance is null then 0
                                  else ceil(greatest(o.data_bytes - o.allowance, 0) / 1073741824.0)::bigint end as over_gb) g
$$;
comment on function private.rate_cycles(uuid, date) is 'Rates every line''s usage of the cycles of a billing month: allowances (plan + data packs, pooled per account for pooled plans) and overage in cents. One row per line, plus one per account pool (subscriber_id null).';
revoke all on function private.rate_cycles(uuid, date) from public;

create or replace function public.rate_usage(organization_id uuid, billing_month date)
returns table (
  account_id uuid,
  subscriber_id uuid,
  mdn text,
  pooled boolean,
  cycle_start date,
  cycle_end date,
  data_bytes bigint,
  voice_seconds bigint,
  sms_count bigint,
  data_allowance_bytes numeric,
  data_overage_gb bigint,
  voice_overage_minutes bigint,
  sms_overage bigint,
  overage_cents bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  staff boolean := private.user_role(rate_usage.organization_id) is not null
                   or coalesce(nullif(current_setting('role', true), ''), 'none') = 'service_role'
                   or exists (select 1 from pg_catalog.pg_roles r where r.rolname = session_user and r.rolsuper
                              and coalesce(nullif(current_setting('role', true), ''), 'none') = 'none');
  own uuid[] := private.customer_account_ids();
begin
  if not staff and cardinality(own) = 0 then
    perform private.require_role(rate_usage.organization_id, 'viewer');  -- raises the usual refusal
  end if;
  if rate_usage.billing_month is null or rate_usage.billing_month <> date_trunc('month', rate_usage.billing_month)::date then
    raise exception 'give the first day of the billing month, not %', rate_usage.billing_month using errcode = '22023';
  end if;
  return query
    select r.account_id, r.subscriber_id, r.mdn, r.pooled, r.cycle_start, r.cycle_end, r.data_bytes, r.voice_seconds, r.sms_count,
           r.data_allowance_bytes, r.data_overage_gb, r.voice_overage_minutes, r.sms_overage,
           r.data_overage_cents + r.voice_overage_cents + r.sms_overage_cents
    from private.rate_cycles(rate_usage.organization_id, rate_usage.billing_month) r
    where staff or r.account_id = any (own);
end;
$$;
comment on function public.rate_usage(uuid, date) is 'Usage rated so far for the cycles that start in a billing month: quantities, allowances and overage per line and per pooled account, as the bill run will invoice them. Staff see every account of the organization; a self-service customer sees their own accounts.';
revoke all on function public.rate_usage(uuid, date) from public, anon;
grant execute on function public.rate_usage(uuid, date) to authenticated, service_role;

-- >>> sql/40_billing/20_bill_run.sql (sha256 109dfb27bfad7bc01a6ef1dfd56c1d9e2db4ff36da10215939119ea332b580e2)
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
  insert into pg_temp.bill_lines (account_id, subscriber_id, kind, description, quantity, unit, unit_price_cents, amount_cents, service_start, service_end, tax_rate_id, jurisdiction)
  select b.account_id, null, 'tax',
         t.name || case when t.percent is not null then ' (' || trim(trailing '.' from trim(trailing '0' from t.percent::text)) || '%)' else '' end,
         case when t.percent is not null then base.amount else base.lines end,
         case when t.percent is not null then 'cents' else 'line' end,
         coalesce(t.percent / 100, t.per_line_cents),
         case when t.percent is not null then round(base.amount * t.percent / 100)::bigint else t.per_line_cents * base.lines end,
         b.cycle_start, b.cycle_end, t.id, concat_ws(', ', t.county, t.state, t.country)
  from pg_temp.bill_accounts b
  join public.tax_rates t on t.organization_id = compute_taxes.organization_id and t.country = b.country
   and (t.state is null or t.state = b.state) and (t.county is null or lower(t.county) = lower(b.county))
   and t.effective @> b.cycle_start
  cross join lateral (
    select coalesce(sum(k.amount) filter (where k.kind = any (t.applies_to)), 0) as amount, coalesce(max(k.lines), 0) as lines
    from pg_temp.bill_kinds k where k.account_id = b.account_id) base
  where (t.percent is not null and base.amount <> 0) or (t.per_line_cents is not null and base.lines > 0 and t.per_line_cents > 0);
end;
$$;
comment on function private.compute_taxes(uuid, text) is 'Tax-provider interface of the bill run: adds tax and fee lines to pg_temp.bill_lines for the accounts of pg_temp.bill_accounts (rate_table: percentages of the charge kinds a rate applies to, or an amount per billed line).';
revoke all on function private.compute_taxes(uuid, text) from public;

create or replace function public.run_bill_cycle(organization_id uuid, billing_month date, as_of timestamptz default now())
returns public.bill_runs
language plpgsql
security definer
set search_path = ''
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
    left join lateral (
      select sum(il.amount_cents) as charged
      from public.invoices i join public.invoice_lines il on il.organization_id = org and il.invoice_id = i.id
      where i.organization_id = org and i.account_id = r.account_id and il.kind in ('usage', 'usage_adjustment')
        and il.service_start = r.cycle_start and il.subscriber_id is not distinct from r.subscriber_id) c on true
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
  create index on pg_temp.bill_kinds (account_id);
  analyze pg_temp.bill_kinds;
  select p.* into policy from public.billing_policies p where p.organization_id = org;
  perform private.compute_taxes(org, policy.tax_provider);

  analyze pg_temp.bill_lines;
  -- Accounts with nothing to bill get no invoice (and use no number).
  delete from pg_temp.bill_accounts b where not exists (select 1 from pg_temp.bill_lines x where x.account_id = b.account_id);

  -- Gapless numbers: the policy row stays locked until commit, so concurrent runs number one after the other.
  select p.next_invoice_number into first_number from public.billing_policies p where p.organization_id = org for update;
  create temporary table bill_invoices on commit drop as
  select gen_random_uuid() as id, first_number + row_number() over (order by b.cycle_start, b.name, b.account_id) - 1 as number,
         b.account_id, b.cycle_start, b.cycle_end, concat_ws(', ', b.county, b.state, b.country) as jurisdiction,
         coalesce(sum(x.amount_cents) filter (where x.kind not in ('discount', 'tax')), 0)::bigint as subtotal,
         coalesce(sum(x.amount_cents) filter (where x.kind = 'discount'), 0)::bigint as discount,
         coalesce(sum(x.amount_cents) filter (where x.kind = 'tax'), 0)::bigint as tax
  from pg_temp.bill_accounts b join pg_temp.bill_lines x on x.account_id = b.account_id
  group by b.account_id, b.cycle_start, b.cycle_end, b.name, b.county, b.state, b.country;
  get diagnostics invoice_count = row_count;
  analyze pg_temp.bill_invoices;
  update public.billing_policies p set next_invoice_number = first_number + invoice_count
   where p.organization_id = org and invoice_count > 0;

  insert into public.invoices (organization_id, id, number, display_number, account_id, bill_run_id, billing_month, period_start, period_end,
                               issued_on, due_on, currency, jurisdiction, subtotal_cents, discount_cents, tax_cents, total_cents, status)
  select org, v.id, v.number, policy.invoice_prefix || lpad(v.number::text, 6, '0'), v.account_id, run.id, month, v.cycle_start, v.cycle_end,
         today, today + policy.payment_terms_days, money, v.jurisdiction, v.subtotal, v.discount, v.tax,
         v.subtotal + v.discount + v.tax, case when v.subtotal + v.discount + v.tax <= 0 then 'paid' else 'open' end::public.invoice_status
  from pg_temp.bill_invoices v;
  -- Lines check their invoice (foreign key) one by one: with statistics that still describe a
  -- small invoices table the check would scan it for every line.
  if invoice_count > 1000 then
    analyze public.invoices;
  end if;

  insert into public.invoice_lines (organization_id, invoice_id, line_number, subscriber_id, kind, description, quantity, unit, unit_price_cents,
                                    amount_cents, service_start, service_end, plan_id, tax_rate_id, jurisdiction)
  select org, v.id,
         row_number() over (partition by v.id order by x.subscriber_id is null, x.mdn, x.subscriber_id,
                            array_position(enum_range(null::public.charge_kind), x.kind), x.service_start, x.description),
         x.subscriber_id, x.kind, case when x.mdn is not null then x.description || ' · ' || x.mdn else x.description end,
         x.quantity, x.unit, x.unit_price_cents, x.amount_cents, x.service_start, x.service_end, x.plan_id, x.tax_rate_id, x.jurisdiction
  from pg_temp.bill_lines x join pg_temp.bill_invoices v on v.account_id = x.account_id;

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
  where e.amount <> 0;

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

-- >>> sql/40_billing/30_money.sql (sha256 d8bf133bb04efa27046fb8bb7af122a736c0f09ba0410e57c4e977773813ec5c)
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
  create temporary table if not exists payment_allocation (invoice_id uuid, amount bigint) on commit drop;
  truncate pg_temp.payment_allocation;
  insert into pg_temp.payment_allocation (invoice_id, amount)
  select d.id, least(d.outstanding, record_payment.amount_cents - (d.running - d.outstanding))
  from (
    select i.id, i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding,
           sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents)
             over (order by i.id is distinct from record_payment.invoice_id, i.due_on, i.number) as running
    from public.invoices i
    where i.organization_id = org and i.account_id = payer.id and i.status in ('open', 'past_due')
  ) d
  where record_payment.amount_cents - (d.running - d.outstanding) > 0;
  select record_payment.amount_cents - coalesce(sum(a.amount), 0) into remaining from pg_temp.payment_allocation a;

  insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents, account_id, invoice_id, payment_id)
  select org, payment.id, 'payment', e.ledger_account, e.amount, payer.id, e.invoice_id, payment.id
  from (
    select 'cash'::public.ledger_account as ledger_account, record_payment.amount_cents as amount, null::uuid as invoice_id
    union all
    select 'accounts_receivable', -a.amount, a.invoice_id from pg_temp.payment_allocation a
    union all
    select 'wallet_liability', -remaining, null where remaining > 0
  ) e;
  update public.invoices i
     set amount_paid_cents = i.amount_paid_cents + a.amount,
         status = case when i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents - a.amount <= 0
                       then 'paid' else i.status end,
         updated_at = now()
    from pg_temp.payment_allocation a
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

-- >>> sql/40_billing/40_dunning.sql (sha256 f17bd853079de6c6edb307b64a2a7b0e5e9c35a997020c15e6578c0f277109c4)
-- Dunning: what happens to an invoice that is not paid, by the organization's policy
-- (billing_policies). run_dunning is the scheduled job (the server's scheduler calls it; on
-- Supabase pg_cron can, see docs/BILLING.md). For each unpaid invoice, by days past due_on:
--   reminder      on the policy's reminder days (the latest day reached, once each);
--   past_due      after past_due_after_days: the invoice becomes past_due;
--   suspended     after suspend_after_days: every active line of the account is suspended for
--                 non-payment through the lifecycle functions (so the carrier is told), the
--                 account becomes suspended; lines the carrier rules refuse are retried next run;
--   written_off   after write_off_after_days: what is owed goes to bad debt.
-- Paying (record_payment, a credit note, a wallet top-up) restores the lines at once when
-- nothing that caused the suspension is still owed; run_dunning also checks.

create or replace function private.restore_if_paid(organization_id uuid, account_id uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  org uuid := restore_if_paid.organization_id;
  line record;
  restored integer := 0;
  failures jsonb := '[]';
begin
  if not exists (select 1 from public.accounts a where a.organization_id = org and a.id = restore_if_paid.account_id and a.status = 'suspended')
     or not exists (select 1 from public.dunning_events e where e.organization_id = org and e.account_id = restore_if_paid.account_id
                     and e.step = 'suspended')
     or exists (select 1 from public.invoices i
                where i.organization_id = org and i.account_id = restore_if_paid.account_id and i.status in ('past_due', 'written_off')
                  and exists (select 1 from public.dunning_events e where e.organization_id = org and e.invoice_id = i.id and e.step = 'suspended')) then
    return null;
  end if;
  for line in
    select l.id from public.subscribers l
    where l.organization_id = org and l.account_id = restore_if_paid.account_id and l.status = 'suspended' and l.suspend_reason = 'non_payment'
    order by l.id
  loop
    begin
      perform private.restore_line(org, line.id);
      restored := restored + 1;
    exception when others then
      failures := failures || jsonb_build_object('subscriber_id', line.id, 'error', sqlerrm);
    end;
  end loop;
  -- Lines the carrier rules refuse now (say, a command still open) keep the account suspended,
  -- so the next dunning run tries again.
  if jsonb_array_length(failures) = 0 then
    update public.accounts a set status = 'active', updated_at = now()
     where a.organization_id = org and a.id = restore_if_paid.account_id;
  end if;
  insert into public.dunning_events (organization_id, account_id, step, days_overdue, details)
  values (org, restore_if_paid.account_id, 'restored', 0, jsonb_build_object('lines_restored', restored, 'failures', failures));
  return restored;
end;
$$;
comment on function private.restore_if_paid(uuid, uuid) is 'Restores an account suspended by dunning, and its lines suspended for non-payment, once every invoice that caused the suspension is settled. Returns the lines restored, or null when the account is not due a restore.';

create or replace function public.run_dunning(organization_id uuid, as_of timestamptz default now())
returns table (step public.dunning_step, invoices integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := run_dunning.organization_id;
  policy public.billing_policies;
  today date;
  target record;
  line record;
  failures jsonb;
  suspended_lines integer;
  counts jsonb := '{}';
  n integer;
begin
  perform private.require_role(org, 'operator');
  insert into public.billing_policies (organization_id) values (org) on conflict do nothing;
  select p.* into policy from public.billing_policies p where p.organization_id = org;
  if not policy.dunning_enabled then
    return;
  end if;
  select (run_dunning.as_of at time zone o.time_zone)::date into today from public.organizations o where o.id = org;
  -- One dunning run per organization at a time.
  perform pg_advisory_xact_lock(hashtext('wingtel.dunning'), hashtext(org::text));

  -- Past due.
  with changed as (
    update public.invoices i set status = 'past_due', updated_at = now()
     where i.organization_id = org and i.status = 'open' and i.due_on + policy.past_due_after_days <= today
       and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
    returning i.id, i.account_id, i.due_on
  ), logged as (
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, c.account_id, c.id, 'past_due', policy.past_due_after_days, run_dunning.as_of, jsonb_build_object('due_on', c.due_on)
    from changed c
    on conflict do nothing
    returning 1
  )
  select count(*) into n from logged;
  counts := counts || jsonb_build_object('past_due', n);

  -- Reminders: the latest reminder day reached, once.
  with reached as (
    select i.id, i.account_id, max(r.day) as day,
           i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding
    from public.invoices i cross join unnest(policy.reminder_days) as r (day)
    where i.organization_id = org and i.status in ('open', 'past_due') and today - i.due_on >= r.day
      and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
    group by i.organization_id, i.id
  ), logged as (
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, r.account_id, r.id, 'reminder', r.day, run_dunning.as_of, jsonb_build_object('outstanding_cents', r.outstanding)
    from reached r
    on conflict do nothing
    returning 1
  )
  select count(*) into n from logged;
  counts := counts || jsonb_build_object('reminder', n);

  -- Suspension for non-payment, through the lifecycle (the carrier is told).
  n := 0;
  for target in
    select i.account_id, array_agg(i.id) as invoice_ids
    from public.invoices i
    where i.organization_id = org and i.status = 'past_due' and today - i.due_on >= policy.suspend_after_days
    group by i.account_id order by i.account_id
  loop
    failures := '[]';
    suspended_lines := 0;
    for line in
      select l.id from public.subscribers l
      where l.organization_id = org and l.account_id = target.account_id and l.status = 'active'
      order by l.id
    loop
      begin
        perform private.suspend_line(org, line.id, 'non_payment');
        suspended_lines := suspended_lines + 1;
      exception when others then
        failures := failures || jsonb_build_object('subscriber_id', line.id, 'error', sqlerrm);
      end;
    end loop;
    update public.accounts a set status = 'suspended', updated_at = now()
     where a.organization_id = org and a.id = target.account_id and a.status = 'active';
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, target.account_id, v.id, 'suspended', policy.suspend_after_days, run_dunning.as_of,
           jsonb_build_object('lines_suspended', suspended_lines, 'failures', failures)
    from unnest(target.invoice_ids) as v (id)
    on conflict do nothing;
    get diagnostics suspended_lines = row_count;
    n := n + suspended_lines;
  end loop;
  counts := counts || jsonb_build_object('suspended', n);

  -- Write-off at the end of the policy.
  n := 0;
  for target in
    select i.id, i.account_id from public.invoices i
    where i.organization_id = org and i.status = 'past_due' and today - i.due_on >= policy.write_off_after_days
    order by i.number
  loop
    perform private.write_off(org, target.id, 'dunning');
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at)
    values (org, target.account_id, target.id, 'written_off', policy.write_off_after_days, run_dunning.as_of);
    n := n + 1;
  end loop;
  counts := counts || jsonb_build_object('written_off', n);

  -- Restore accounts whose suspension has been paid (payments normally restore at once).
  n := 0;
  for target in
    select a.id from public.accounts a where a.organization_id = org and a.status = 'suspended'
      and exists (select 1 from public.dunning_events e where e.organization_id = org and e.account_id = a.id and e.step = 'suspended')
  loop
    if private.restore_if_paid(org, target.id) is not null then
      n := n + 1;
    end if;
  end loop;
  counts := counts || jsonb_build_object('restored', n);

  return query select s.step, coalesce((counts ->> s.step::text)::integer, 0)
               from unnest(enum_range(null::public.dunning_step)) as s (step);
end;
$$;
comment on function public.run_dunning(uuid, timestamptz) is 'The dunning job for one organization (operators, services, the scheduler): reminders, past due, suspension for non-payment through the lifecycle, write-off, and restore of paid accounts, by the organization''s billing policy. Returns how many invoices (accounts for restored) each step touched.';
revoke all on function private.restore_if_paid(uuid, uuid) from public;
revoke all on function public.run_dunning(uuid, timestamptz) from public, anon;
grant execute on function public.run_dunning(uuid, timestamptz) to authenticated, service_role;

-- >>> sql/40_billing/50_reports.sql (sha256 f59383b334dd101e3afd4622ad0571756a42269f4a941069537fe1168a043f0a)
-- Finance reports and the invoice document. The reports are functions for analysts (and
-- `wingtel report`); invoice_html renders an invoice for the customer portal with the
-- caller's own row-level security (a customer gets only their own invoices).

create or replace function public.revenue_report(organization_id uuid, billing_month date)
returns table (
  jurisdiction text,
  invoices bigint,
  recurring_cents bigint,
  usage_cents bigint,
  one_off_cents bigint,
  discount_cents bigint,
  net_revenue_cents bigint,
  sales_tax_cents bigint,
  usf_cents bigint,
  e911_cents bigint,
  other_fees_cents bigint,
  billed_cents bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_role(revenue_report.organization_id, 'analyst');
  if revenue_report.billing_month is null or revenue_report.billing_month <> date_trunc('month', revenue_report.billing_month)::date then
    raise exception 'give the first day of the billing month, not %', revenue_report.billing_month using errcode = '22023';
  end if;
  return query
    select coalesce(i.jurisdiction, 'unknown'), count(distinct i.id),
           coalesce(sum(l.amount_cents) filter (where l.kind in ('recurring', 'proration', 'add_on')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind in ('usage', 'usage_adjustment')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind in ('one_off', 'credit')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind = 'discount'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind <> 'tax'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'sales_tax'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'usf'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'e911'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'regulatory_fee'), 0)::bigint,
           coalesce(sum(l.amount_cents), 0)::bigint
    from public.invoices i
    join public.invoice_lines l on l.organization_id = i.organization_id and l.invoice_id = i.id
    left join public.tax_rates t on t.organization_id = i.organization_id and t.id = l.tax_rate_id
    where i.organization_id = revenue_report.organization_id and i.billing_month = revenue_report.billing_month and i.status <> 'void'
    group by 1
    order by 1;
end;
$$;
comment on function public.revenue_report(uuid, date) is 'Month-end revenue and tax liability per jurisdiction (the billed account''s county, state and country) for the invoices of a billing month (analysts and above): revenue by kind, discounts, each tax and fee, total billed.';

create or replace function public.ar_aging(organization_id uuid, as_of date default current_date)
returns table (
  account_id uuid,
  account_name text,
  invoices bigint,
  current_cents bigint,
  days_1_30_cents bigint,
  days_31_60_cents bigint,
  days_61_90_cents bigint,
  days_over_90_cents bigint,
  total_cents bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_role(ar_aging.organization_id, 'analyst');
  return query
    select a.id, a.name, count(*),
           coalesce(sum(o.owed) filter (where o.days <= 0), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 1 and 30), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 31 and 60), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 61 and 90), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days > 90), 0)::bigint,
           sum(o.owed)::bigint
    from (select i.account_id, ar_aging.as_of - i.due_on as days,
                 i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as owed
          from public.invoices i
          where i.organization_id = ar_aging.organization_id and i.status in ('open', 'past_due')) o
    join public.accounts a on a.organization_id = ar_aging.organization_id and a.id = o.account_id
    where o.owed > 0
    group by a.id, a.name
    order by sum(o.owed) desc, a.name;
end;
$$;
comment on function public.ar_aging(uuid, date) is 'Accounts-receivable aging per account (analysts and above): what is owed on open and past-due invoices, by days past due as of a date.';

create or replace function private.html_escape(value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(replace(replace(coalesce(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
comment on function private.html_escape(text) is 'Escapes text for HTML element content and attribute values.';

create or replace function private.format_money(cents bigint, currency text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when cents < 0 then '-' else '' end
      || case currency when 'USD' then '$' when 'EUR' then '€' when 'GBP' then '£' else currency || ' ' end
      || to_char(abs(cents) / 100, 'FM999,999,999,990') || '.' || lpad((abs(cents) % 100)::text, 2, '0')
$$;
comment on function private.format_money(bigint, text) is 'Formats integer cents for people: -$1,234.05.';

create or replace function public.invoice_html(invoice_id uuid)
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select format($html$<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice %1$s</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;width:100%%}
td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left}td.amount,th.amount{text-align:right}
.totals td{border:none}.muted{color:#666}</style></head>
<body>
<h1>%2$s</h1>
<p>Invoice <strong>%1$s</strong> · issued %3$s · due %4$s · status %5$s</p>
<p>%6$s<br><span class="muted">%7$s</span></p>
<p>Service period %8$s to %9$s</p>
<table><thead><tr><th>Description</th><th>Service</th><th class="amount">Qty</th><th class="amount">Amount</th></tr></thead><tbody>
%10$s
</tbody></table>
<table class="totals">
<tr><td>Subtotal</td><td class="amount">%11$s</td></tr>
<tr><td>Discounts</td><td class="amount">%12$s</td></tr>
<tr><td>Taxes and fees</td><td class="amount">%13$s</td></tr>
<tr><td><strong>Total</strong></td><td class="amount"><strong>%14$s</strong></td></tr>
<tr><td>Paid and credited</td><td class="amount">%15$s</td></tr>
<tr><td><strong>Amount due</strong></td><td class="amount"><strong>%16$s</strong></td></tr>
</table>
</body></html>
$html$,
    private.html_escape(i.display_number), private.html_escape(o.name), i.issued_on, i.due_on, i.status,
    private.html_escape(a.name),
    private.html_escape(concat_ws(', ', a.address_line1, a.city, a.state, a.postal_code)),
    i.period_start, i.period_end - 1,
    (select string_agg(format('<tr><td>%s</td><td>%s</td><td class="amount">%s</td><td class="amount">%s</td></tr>',
                              private.html_escape(l.description),
                              case when l.service_start is null then '' when l.service_end is null or l.service_end <= l.service_start + 1
                                   then l.service_start::text else l.service_start || ' – ' || (l.service_end - 1) end,
                              case when l.kind = 'tax' or l.quantity is null then '' else trim(trailing '.' from trim(trailing '0' from l.quantity::text)) || ' ' || coalesce(l.unit, '') end,
                              private.format_money(l.amount_cents, i.currency)), E'\n' order by l.line_number)
     from public.invoice_lines l where l.organization_id = i.organization_id and l.invoice_id = i.id),
    private.format_money(i.subtotal_cents, i.currency), private.format_money(i.discount_cents, i.currency),
    private.format_money(i.tax_cents, i.currency), private.format_money(i.total_cents, i.currency),
    private.format_money(-(i.amount_paid_cents + i.amount_credited_cents), i.currency),
    private.format_money(case when i.status in ('open', 'past_due')
                              then i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents else 0 end, i.currency))
  from public.invoices i
  join public.accounts a on a.organization_id = i.organization_id and a.id = i.account_id
  join public.organizations o on o.id = i.organization_id
  where i.id = invoice_html.invoice_id
$$;
comment on function public.invoice_html(uuid) is 'The invoice as an HTML page for the customer portal, read with the caller''s row-level security (customers: their own invoices; staff: their organization''s). Null when the caller cannot see it.';

revoke all on function private.html_escape(text), private.format_money(bigint, text) from public;
grant execute on function private.html_escape(text), private.format_money(bigint, text) to authenticated, service_role;
revoke all on function public.revenue_report(uuid, date), public.ar_aging(uuid, date), public.invoice_html(uuid) from public, anon;
grant execute on function public.revenue_report(uuid, date), public.ar_aging(uuid, date), public.invoice_html(uuid) to authenticated, service_role;

-- >>> sql/40_billing/60_access.sql (sha256 eb02a3375832c860e90f0d5b7e556ea68379a48f8a1ac09b08214c1509edcc09)
-- Who sees and changes billing. Staff read their organization's billing; admins set the
-- policy and the tax table; agents add one-off charges, credits and discounts. Invoices,
-- payments, the ledger, wallets and dunning change only through the billing functions.
-- Customers read their own invoices, lines, payments, credit notes, wallet and pending charges.
-- The ledger and invoice lines are append-only for every role.

create or replace function private.customer_invoice_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(i.id), '{}') from public.invoices i
  where i.account_id = any (private.customer_account_ids())
$$;
comment on function private.customer_invoice_ids() is 'Invoices of the accounts the caller is a self-service customer of.';
revoke all on function private.customer_invoice_ids() from public;
grant execute on function private.customer_invoice_ids() to authenticated, service_role;

-- Every ledger statement must leave each transaction it writes balanced.
create or replace function private.check_ledger_balance()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  unbalanced record;
begin
  select n.transaction_id, sum(n.amount_cents) as off into unbalanced
  from new_rows n group by n.organization_id, n.transaction_id having sum(n.amount_cents) <> 0 limit 1;
  if found then
    raise exception 'ledger transaction % does not balance (off by % cents)', unbalanced.transaction_id, unbalanced.off
      using errcode = '23514', hint = 'Write all entries of a transaction in one statement; debits (positive) must equal credits (negative).';
  end if;
  return null;
end;
$$;
comment on function private.check_ledger_balance() is 'Statement trigger on ledger_entries: refuses a statement whose entries leave any transaction not summing to zero.';
revoke all on function private.check_ledger_balance() from public;

create or replace function private.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception '%.% is append-only: % is not allowed', tg_table_schema, tg_table_name, tg_op using errcode = '42501',
    hint = 'Correct billing with a credit note, a refund or a charge on the next invoice.';
end;
$$;
comment on function private.forbid_change() is 'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only billing tables (ledger entries, invoice lines).';
revoke all on function private.forbid_change() from public;

create or replace trigger ledger_entries_balanced after insert on public.ledger_entries
  referencing new table as new_rows for each statement execute function private.check_ledger_balance();
create or replace trigger ledger_entries_append_only before update or delete on public.ledger_entries
  for each row execute function private.forbid_change();
create or replace trigger ledger_entries_no_truncate before truncate on public.ledger_entries
  for each statement execute function private.forbid_change();
create or replace trigger invoice_lines_append_only before update or delete on public.invoice_lines
  for each row execute function private.forbid_change();
create or replace trigger invoice_lines_no_truncate before truncate on public.invoice_lines
  for each statement execute function private.forbid_change();

-- Privileges: nothing for anon; authenticated gets what the policies then narrow.
revoke all on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events from anon, authenticated;
grant select on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events to authenticated;
grant insert on public.billing_policies to authenticated;
grant update (invoice_prefix, credit_note_prefix, payment_terms_days, reminder_days, past_due_after_days, suspend_after_days,
  write_off_after_days, dunning_enabled, credit_unused_days, apply_wallet_to_invoices, tax_provider, updated_at)
  on public.billing_policies to authenticated;
grant insert, update, delete on public.tax_rates, public.account_discounts to authenticated;
grant insert, delete on public.account_charges to authenticated;
grant update (description, amount_cents, charge_on, subscriber_id) on public.account_charges to authenticated;
grant all on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events to service_role;

drop policy if exists "Members can view the billing policy" on public.billing_policies;
create policy "Members can view the billing policy" on public.billing_policies for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins set the billing policy" on public.billing_policies;
create policy "Admins set the billing policy" on public.billing_policies for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));
drop policy if exists "Admins change the billing policy" on public.billing_policies;
create policy "Admins change the billing policy" on public.billing_policies for update to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members can view tax rates" on public.tax_rates;
create policy "Members can view tax rates" on public.tax_rates for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage tax rates" on public.tax_rates;
create policy "Admins manage tax rates" on public.tax_rates for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and the customer can view discounts" on public.account_discounts;
create policy "Members and the customer can view discounts" on public.account_discounts for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents manage discounts" on public.account_discounts;
create policy "Agents manage discounts" on public.account_discounts for all to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

drop policy if exists "Members and the customer can view charges" on public.account_charges;
create policy "Members and the customer can view charges" on public.account_charges for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents add unbilled charges" on public.account_charges;
create policy "Agents add unbilled charges" on public.account_charges for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);
drop policy if exists "Agents change unbilled charges" on public.account_charges;
create policy "Agents change unbilled charges" on public.account_charges for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null)
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);
drop policy if exists "Agents remove unbilled charges" on public.account_charges;
create policy "Agents remove unbilled charges" on public.account_charges for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);

drop policy if exists "Members can view bill runs" on public.bill_runs;
create policy "Members can view bill runs" on public.bill_runs for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members and the customer can view invoices" on public.invoices;
create policy "Members and the customer can view invoices" on public.invoices for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view invoice lines" on public.invoice_lines;
create policy "Members and the customer can view invoice lines" on public.invoice_lines for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or invoice_id = any ((select private.customer_invoice_ids())::uuid[]));

drop policy if exists "Members and the customer can view payments" on public.payments;
create policy "Members and the customer can view payments" on public.payments for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view credit notes" on public.credit_notes;
create policy "Members and the customer can view credit notes" on public.credit_notes for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view wallet movements" on public.wallet_transactions;
create policy "Members and the customer can view wallet movements" on public.wallet_transactions for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Analysts can view the ledger" on public.ledger_entries;
create policy "Analysts can view the ledger" on public.ledger_entries for select to authenticated
  using (organization_id = any ((select private.user_org_ids('analyst'))::uuid[]));

drop policy if exists "Members can view dunning" on public.dunning_events;
create policy "Members can view dunning" on public.dunning_events for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

-- The audit trail: settings, charges and the money documents. Invoice lines and the ledger
-- are append-only and dunning_events is itself a history, so they are not audited twice.
select audit.enable('public.billing_policies', 'billing', key_columns => array['organization_id']);
select audit.enable('public.tax_rates', 'billing');
select audit.enable('public.account_discounts', 'billing');
select audit.enable('public.account_charges', 'billing');
select audit.enable('public.bill_runs', 'billing');
select audit.enable('public.invoices', 'billing');
select audit.enable('public.payments', 'billing');
select audit.enable('public.credit_notes', 'billing');
select audit.enable('public.wallet_transactions', 'billing');
