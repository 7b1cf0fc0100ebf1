-- Usage per line per billing cycle, kept by the rollups (B3 growth). Rating read every daily
-- rollup of a two-month window: 48 rows per line, a million lines 48M rows (4.3 GB) on every
-- call, twice per bill run. It now reads one row per line and cycle. usage_daily stays the
-- table of record; statement triggers on it (sql/30_usage/30_cycles.sql) add each change to
-- the cycle it falls in, by the billing day of the line's account, and the cycles of a line
-- are derived again when that billing day or the line's account changes.
create table public.usage_cycles (
  organization_id uuid not null,
  subscriber_id uuid not null,
  cycle_start date not null,
  data_bytes bigint not null default 0,
  voice_seconds bigint not null default 0,
  sms_count bigint not null default 0,
  primary key (organization_id, subscriber_id, cycle_start)
);
alter table public.usage_cycles enable row level security;
create index usage_cycles_cycle_idx on public.usage_cycles (organization_id, cycle_start);
comment on table public.usage_cycles is 'Usage per line per billing cycle: the sums of usage_daily over each cycle [cycle_start, cycle_start + 1 month) of the line''s account (billing day d: cycles start on day d). Maintained from usage_daily by triggers; rating reads it. Lines with no usage in a cycle have no row.';
comment on column public.usage_cycles.cycle_start is 'First local day of the cycle: day billing_day of a month.';

-- Existing rollups, summed into their cycles.
insert into public.usage_cycles (organization_id, subscriber_id, cycle_start, data_bytes, voice_seconds, sms_count)
select d.organization_id, d.subscriber_id,
       case when extract(day from d.day) >= a.billing_day then date_trunc('month', d.day)::date + (a.billing_day - 1)
            else (date_trunc('month', d.day) - interval '1 month')::date + (a.billing_day - 1) end,
       sum(d.data_bytes), sum(d.voice_seconds), sum(d.sms_count)
from public.usage_daily d
join public.subscribers l on l.organization_id = d.organization_id and l.id = d.subscriber_id
join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
group by 1, 2, 3;
