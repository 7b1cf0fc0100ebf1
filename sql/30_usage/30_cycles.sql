-- Usage per billing cycle (usage_cycles), kept in step with the daily rollups. Every change to
-- usage_daily — ingestion's insert or its add-to on a re-delivered day, a correction, a delete —
-- is added to the cycle its day falls in by statement triggers that read the changed rows once
-- (transition tables). The cycle follows the billing day of the line's account; when that day
-- or the line's account changes, the line's cycles are summed again from usage_daily. A loader
-- that writes usage_daily with triggers off (session_replication_role = replica, as
-- benchmarks/billing.py does) calls private.rebuild_usage_cycles afterwards. A rollup naming no
-- line (usage_daily has no foreign key) belongs to no cycle and is left out. Rating reads one row per line and cycle.

create or replace function private.cycle_start(day date, billing_day integer)
returns date
language sql
immutable
parallel safe
-- No SET clause, so the planner inlines it: called as a function (a SET search_path stops the
-- inlining) it doubled the cost of adding a million line-days to usage_daily (22.5 s against
-- 13.3 s inlined, 9.0 s with no cycle triggers). Only built-ins, qualified with pg_catalog, and
-- timestamps without time zone: the result does not depend on the session's settings.
as $$
  -- Billing day d (1-28): the cycle holding a day starts on day d of its month, or of the month
  -- before when the day comes earlier in its month.
  select case when pg_catalog.date_part('day', cycle_start.day::timestamp) >= cycle_start.billing_day
              then pg_catalog.date_trunc('month', cycle_start.day::timestamp)::date + (cycle_start.billing_day - 1)
              else (pg_catalog.date_trunc('month', cycle_start.day::timestamp) - interval '1 month')::date + (cycle_start.billing_day - 1) end
$$;
comment on function private.cycle_start(date, integer) is 'First day of the billing cycle holding a local day, for an account billing on day billing_day (1-28).';
revoke all on function private.cycle_start(date, integer) from public;

create or replace function private.add_usage_to_cycles()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- The changed line-days summed per line and cycle, one statement per transition table: old
  -- rows are taken away, then new rows added (an update does both: its cycle moves by new - old).
  if tg_op in ('UPDATE', 'DELETE') then
    update public.usage_cycles c
       set data_bytes = c.data_bytes - o.data_bytes, voice_seconds = c.voice_seconds - o.voice_seconds, sms_count = c.sms_count - o.sms_count
      from (select r.organization_id, r.subscriber_id, private.cycle_start(r.day, a.billing_day) as cycle_start,
                   sum(r.data_bytes) as data_bytes, sum(r.voice_seconds) as voice_seconds, sum(r.sms_count) as sms_count
            from old_rows r
            join public.subscribers l on l.organization_id = r.organization_id and l.id = r.subscriber_id
            join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
            group by 1, 2, 3) o
     where c.organization_id = o.organization_id and c.subscriber_id = o.subscriber_id and c.cycle_start = o.cycle_start;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    insert into public.usage_cycles as c (organization_id, subscriber_id, cycle_start, data_bytes, voice_seconds, sms_count)
    select n.organization_id, n.subscriber_id, private.cycle_start(n.day, a.billing_day),
           sum(n.data_bytes), sum(n.voice_seconds), sum(n.sms_count)
    from new_rows n
    join public.subscribers l on l.organization_id = n.organization_id and l.id = n.subscriber_id
    join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
    group by 1, 2, 3
    on conflict (organization_id, subscriber_id, cycle_start) do update
      set data_bytes = c.data_bytes + excluded.data_bytes, voice_seconds = c.voice_seconds + excluded.voice_seconds,
          sms_count = c.sms_count + excluded.sms_count;
  end if;
  return null;
end;
$$;
comment on function private.add_usage_to_cycles() is 'Statement trigger on usage_daily (insert, update, delete): adds the change of each line-day to its line''s billing cycle in usage_cycles.';
revoke all on function private.add_usage_to_cycles() from public;

-- The transition-table form of the old and new rows cannot be shared between events: one trigger each.
create or replace trigger usage_daily_cycles_insert after insert on public.usage_daily
  referencing new table as new_rows for each statement execute function private.add_usage_to_cycles();
create or replace trigger usage_daily_cycles_update after update on public.usage_daily
  referencing old table as old_rows new table as new_rows for each statement execute function private.add_usage_to_cycles();
create or replace trigger usage_daily_cycles_delete after delete on public.usage_daily
  referencing old table as old_rows for each statement execute function private.add_usage_to_cycles();

create or replace function private.rebuild_usage_cycles(organization_id uuid, subscriber_ids uuid[] default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := rebuild_usage_cycles.organization_id;
  written bigint;
begin
  -- The lines' cycles (every line of the organization when subscriber_ids is null), summed again
  -- from usage_daily by the billing day of each line's account as it is now.
  delete from public.usage_cycles c
   where c.organization_id = org and (rebuild_usage_cycles.subscriber_ids is null or c.subscriber_id = any (rebuild_usage_cycles.subscriber_ids));
  insert into public.usage_cycles (organization_id, subscriber_id, cycle_start, data_bytes, voice_seconds, sms_count)
  select d.organization_id, d.subscriber_id, private.cycle_start(d.day, a.billing_day),
         sum(d.data_bytes), sum(d.voice_seconds), sum(d.sms_count)
  from public.usage_daily d
  join public.subscribers l on l.organization_id = d.organization_id and l.id = d.subscriber_id
  join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
  where d.organization_id = org and (rebuild_usage_cycles.subscriber_ids is null or d.subscriber_id = any (rebuild_usage_cycles.subscriber_ids))
  group by 1, 2, 3;
  get diagnostics written = row_count;
  return written;
end;
$$;
comment on function private.rebuild_usage_cycles(uuid, uuid[]) is 'Sums usage_daily into usage_cycles again for some lines of an organization (all of them when subscriber_ids is null): after a change of billing day or of a line''s account, or a load that wrote usage_daily with triggers off. Returns the cycle rows written.';
revoke all on function private.rebuild_usage_cycles(uuid, uuid[]) from public;

create or replace function private.recycle_usage_of_account()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.rebuild_usage_cycles(new.organization_id, array(
    select l.id from public.subscribers l where l.organization_id = new.organization_id and l.account_id = new.id));
  return null;
end;
$$;
comment on function private.recycle_usage_of_account() is 'Trigger on accounts: a new billing day moves the cycles of the account''s lines, so their usage_cycles are summed again.';
revoke all on function private.recycle_usage_of_account() from public;

create or replace trigger accounts_billing_day_cycles after update of billing_day on public.accounts
  for each row when (old.billing_day is distinct from new.billing_day) execute function private.recycle_usage_of_account();

create or replace function private.recycle_usage_of_line()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.rebuild_usage_cycles(new.organization_id, array[new.id]);
  return null;
end;
$$;
comment on function private.recycle_usage_of_line() is 'Trigger on subscribers: a line moved to another account takes that account''s billing day, so its usage_cycles are summed again.';
revoke all on function private.recycle_usage_of_line() from public;

create or replace trigger subscribers_account_cycles after update of account_id on public.subscribers
  for each row when (old.account_id is distinct from new.account_id) execute function private.recycle_usage_of_line();

-- Who reads it: as usage_daily. Only the triggers write it.
revoke all on public.usage_cycles from anon, authenticated;
grant select on public.usage_cycles to authenticated;
grant all on public.usage_cycles to service_role;

drop policy if exists "Members and the customer can view cycle usage" on public.usage_cycles;
create policy "Members and the customer can view cycle usage" on public.usage_cycles for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));
