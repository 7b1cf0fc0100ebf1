-- Building blocks of the line lifecycle (private): lock a line, check its state and the
-- carrier's limits, write the event log and the outbox.

create or replace function private.actor_name()
returns text
language sql
stable
set search_path = ''
as $$
  select nullif(current_setting('wingtel.actor', true), '')
$$;

-- Locks the line for the rest of the transaction: concurrent lifecycle calls on one line
-- run one after the other, and each sees what the previous one did.
create or replace function private.lock_line(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers;
begin
  select s.* into line from public.subscribers s
   where s.organization_id = lock_line.organization_id and s.id = lock_line.subscriber_id
   for update;
  if line.id is null then
    raise exception 'there is no line % in this organization', lock_line.subscriber_id using errcode = 'P0002';
  end if;
  return line;
end;
$$;

create or replace function private.require_line_status(line public.subscribers, allowed public.line_status[], action text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if not line.status = any (allowed) then
    raise exception 'cannot % line % while it is %', action, coalesce(line.mdn, line.id::text), line.status
      using errcode = 'P0001', hint = format('Allowed from: %s.', array_to_string(allowed, ', '));
  end if;
  if exists (select 1 from public.carrier_commands c
             where c.organization_id = line.organization_id and c.subscriber_id = line.id
               and c.status in ('pending', 'in_flight')) then
    raise exception 'cannot % line %: a carrier request for it is still open', action, coalesce(line.mdn, line.id::text)
      using errcode = 'P0001', hint = 'Wait for the carrier to answer the open request (see subscriber_activity).';
  end if;
end;
$$;

-- The carrier's limits, kept as data on public.carriers (PROTOCOLS.md: ThingSpace allows
-- about 5 provisioning actions per line per day and 4 plan changes a month, none while suspended).
create or replace function private.check_carrier_limits(line public.subscribers, kind public.carrier_command_kind)
returns void
language plpgsql
set search_path = ''
as $$
declare
  carrier public.carriers;
  zone text;
  day_start timestamptz;
  month_start timestamptz;
  used bigint;
begin
  select c.* into carrier from public.carriers c where c.organization_id = line.organization_id and c.id = line.carrier_id;
  select o.time_zone into zone from public.organizations o where o.id = line.organization_id;
  day_start := date_trunc('day', now() at time zone zone) at time zone zone;
  month_start := date_trunc('month', now() at time zone zone) at time zone zone;
  if carrier.max_actions_per_line_per_day is not null then
    select count(*) into used from public.carrier_commands c
     where c.organization_id = line.organization_id and c.subscriber_id = line.id and c.created_at >= day_start;
    if used >= carrier.max_actions_per_line_per_day then
      raise exception '% allows % provisioning actions per line per day; line % has had % today',
        carrier.name, carrier.max_actions_per_line_per_day, coalesce(line.mdn, line.id::text), used
        using errcode = 'P0001', hint = 'Try again tomorrow (the day follows the organization''s time zone).';
    end if;
  end if;
  if kind = 'change_plan' then
    if line.status = 'suspended' and not carrier.allows_plan_change_while_suspended then
      raise exception '% does not allow plan changes while a line is suspended', carrier.name
        using errcode = 'P0001', hint = 'Restore the line first.';
    end if;
    if carrier.max_plan_changes_per_month is not null then
      select count(*) into used from public.carrier_commands c
       where c.organization_id = line.organization_id and c.subscriber_id = line.id
         and c.kind = 'change_plan' and c.created_at >= month_start;
      if used >= carrier.max_plan_changes_per_month then
        raise exception '% allows % plan changes per line per month; line % has had %',
          carrier.name, carrier.max_plan_changes_per_month, coalesce(line.mdn, line.id::text), used
          using errcode = 'P0001', hint = 'The next plan change is possible next month.';
      end if;
    end if;
  end if;
end;
$$;

create or replace function private.log_event(
  line public.subscribers, kind text, reason text default null, details jsonb default '{}', command_id uuid default null)
returns void
language sql
set search_path = ''
as $$
  insert into public.subscriber_events (organization_id, subscriber_id, kind, reason, actor_user_id, actor_name, command_id, details)
  values (line.organization_id, line.id, kind, reason, auth.uid(), private.actor_name(), command_id, coalesce(details, '{}'));
$$;

-- The state to restore if the carrier refuses: the line's columns and its SIMs' states.
create or replace function private.snapshot(line public.subscribers, extra jsonb default '{}')
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'status', line.status, 'network_status', line.network_status, 'suspend_reason', line.suspend_reason,
    'current_sim_id', line.current_sim_id, 'current_device_id', line.current_device_id,
    'sims', coalesce((select jsonb_agg(jsonb_build_object('id', c.id, 'state', c.state))
                      from public.sim_cards c
                      where c.organization_id = line.organization_id
                        and (c.id = line.current_sim_id or c.id = (extra ->> 'new_sim_id')::uuid)), '[]'::jsonb)
  ) || coalesce(extra, '{}')
$$;

create or replace function private.enqueue_command(
  line public.subscribers, kind public.carrier_command_kind, payload jsonb, rollback_state jsonb)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  command_id uuid := gen_random_uuid();
begin
  perform private.check_carrier_limits(line, kind);
  insert into public.carrier_commands (organization_id, id, subscriber_id, carrier_id, kind, payload, rollback_state, idempotency_key)
  values (line.organization_id, command_id, line.id, line.carrier_id, kind, payload, rollback_state,
          format('%s:%s:%s:%s', line.organization_id, line.id, kind, command_id));
  perform pg_notify('wingtel_carrier_commands', line.organization_id::text);
  return command_id;
end;
$$;

create or replace function private.set_sim_state(organization_id uuid, sim_id uuid, state public.sim_state)
returns void
language sql
set search_path = ''
as $$
  update public.sim_cards c set state = set_sim_state.state
   where c.organization_id = set_sim_state.organization_id and c.id = set_sim_state.sim_id
$$;

-- Ends a line's plans at `at`: the one running then is closed, later ones (and one that
-- would start exactly then, which never took effect) are removed.
create or replace function private.end_subscriptions(organization_id uuid, subscriber_id uuid, at timestamptz)
returns void
language sql
set search_path = ''
as $$
  delete from public.subscriptions s
   where s.organization_id = end_subscriptions.organization_id and s.subscriber_id = end_subscriptions.subscriber_id
     and lower(s.effective) >= end_subscriptions.at;
  update public.subscriptions s set effective = tstzrange(lower(s.effective), end_subscriptions.at, '[)')
   where s.organization_id = end_subscriptions.organization_id and s.subscriber_id = end_subscriptions.subscriber_id
     and s.effective @> end_subscriptions.at;
$$;

-- The payload a carrier adapter needs for a line: identifiers and the wholesale plan code.
create or replace function private.carrier_payload(line public.subscribers, extra jsonb default '{}')
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'mdn', line.mdn,
    'iccid', (select c.iccid from public.sim_cards c where c.organization_id = line.organization_id and c.id = line.current_sim_id),
    'imei', (select d.imei from public.devices d where d.organization_id = line.organization_id and d.id = line.current_device_id),
    'rate_plan', (select r.code from public.subscriptions s
                  join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
                  join public.carrier_rate_plans r on r.organization_id = p.organization_id and r.id = p.carrier_rate_plan_id
                  where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now()
                  limit 1)
  )) || coalesce(extra, '{}')
$$;

revoke all on function private.actor_name(), private.lock_line(uuid, uuid),
  private.require_line_status(public.subscribers, public.line_status[], text),
  private.check_carrier_limits(public.subscribers, public.carrier_command_kind),
  private.log_event(public.subscribers, text, text, jsonb, uuid), private.snapshot(public.subscribers, jsonb),
  private.enqueue_command(public.subscribers, public.carrier_command_kind, jsonb, jsonb),
  private.set_sim_state(uuid, uuid, public.sim_state), private.end_subscriptions(uuid, uuid, timestamptz), private.carrier_payload(public.subscribers, jsonb) from public;
