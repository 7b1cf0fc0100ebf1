-- Rating: usage of a billing cycle against the allowances of the line's plan, data packs
-- and pools, priced at the plan's overage rates. Set-based over every account of the
-- organization; the bill run rates the cycle before the invoiced one (usage in arrears) and
-- re-rates the one before that (late records).
--
-- Cycles: an account with billing day d has, for billing month M, the cycle
-- [M + (d - 1) days, one month later) in the organization's time zone. Usage is read from
-- usage_cycles (the daily rollups summed per line and cycle, kept in step with usage_daily).
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
-- One row per line: planned as the default 1,000, a caller's join to it became a nested loop of
-- index probes (a million of them in a bill run).
rows 100000
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
  ), used as materialized (
    -- The cycle sums ingestion keeps (usage_cycles): one row per line and cycle, read once and
    -- joined by hash to the lines (not the month's daily rollups: at a million lines those were
    -- 48M rows read twice per bill run; nor one index probe per line, which the planner picks
    -- when it underestimates the lines, as range overlaps make it do).
    select u.subscriber_id, u.cycle_start, u.data_bytes, u.voice_seconds, u.sms_count
    from public.usage_cycles u
    where u.organization_id = rate_cycles.organization_id
      and u.cycle_start >= rate_cycles.billing_month and u.cycle_start < rate_cycles.billing_month + 28
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
    left join used u on u.subscriber_id = l.subscriber_id and u.cycle_start = l.cycle_start
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
