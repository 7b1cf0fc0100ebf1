-- The line lifecycle. These functions are the only way to change a line's state. Each
-- checks the caller's role, locks the line, validates the transition, records the event and
-- queues the carrier command; complete_carrier_command finalizes on the carrier's answer or
-- rolls the business state back with the carrier's reason.
--
--   pending --activate ok--> active <--restore-- suspended
--      |                       |  \--suspend-->     |
--      +--carrier refuses--> failed   \--cancel--> cancelled <--+
--                              active/suspended --port_out--> ported_out
--
-- Staff functions check the role (agent: customer care; operator: operations); the
-- private *_line functions do the work and are shared with the self-service functions.

create or replace function private.suspend_line(organization_id uuid, subscriber_id uuid, reason public.suspend_reason)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(suspend_line.organization_id, suspend_line.subscriber_id);
  command_id uuid;
begin
  perform private.require_line_status(line, array['active']::public.line_status[], 'suspend');
  command_id := private.enqueue_command(line, 'suspend', private.carrier_payload(line, jsonb_build_object('reason', reason)),
                                        private.snapshot(line));
  update public.subscribers s set status = 'suspended', suspend_reason = suspend_line.reason
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'suspend_requested', reason::text, '{}', command_id);
  return line;
end;
$$;

create or replace function private.restore_line(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(restore_line.organization_id, restore_line.subscriber_id);
  command_id uuid;
begin
  perform private.require_line_status(line, array['suspended']::public.line_status[], 'restore');
  command_id := private.enqueue_command(line, 'restore', private.carrier_payload(line), private.snapshot(line));
  update public.subscribers s set status = 'active', suspend_reason = null
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'restore_requested', null, '{}', command_id);
  return line;
end;
$$;

create or replace function private.change_plan_line(organization_id uuid, subscriber_id uuid, plan_id uuid)
returns text
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(change_plan_line.organization_id, change_plan_line.subscriber_id);
  current_sub public.subscriptions;
  current_plan public.plans;
  new_plan public.plans;
  billing_day smallint;
  zone text;
  local_now timestamp;
  period_end timestamptz;
  command_id uuid;
  new_subscription uuid := gen_random_uuid();
begin
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'change the plan of');
  select p.* into new_plan from public.plans p where p.organization_id = line.organization_id and p.id = change_plan_line.plan_id;
  if new_plan.id is null then
    raise exception 'there is no plan % in this organization', change_plan_line.plan_id using errcode = 'P0002';
  end if;
  if new_plan.status <> 'active' then
    raise exception 'plan % (%) is retired and cannot be chosen', new_plan.name, new_plan.code using errcode = 'P0001';
  end if;
  select s.* into current_sub from public.subscriptions s
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now()
   for update;
  select p.* into current_plan from public.plans p where p.organization_id = line.organization_id and p.id = current_sub.plan_id;
  if current_plan.id = new_plan.id then
    raise exception 'line % is already on %', coalesce(line.mdn, line.id::text), new_plan.name using errcode = 'P0001';
  end if;
  -- A change scheduled earlier is replaced by this one.
  delete from public.subscriptions s
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and lower(s.effective) > now();

  if current_plan.id is null or new_plan.price_cents >= current_plan.price_cents then
    -- Upgrade (or a line without a current plan): now; the unused part is credited by the bill run.
    command_id := private.enqueue_command(
      line, 'change_plan', private.carrier_payload(line) || jsonb_build_object('rate_plan',
        (select r.code from public.carrier_rate_plans r where r.organization_id = line.organization_id and r.id = new_plan.carrier_rate_plan_id)),
      private.snapshot(line, jsonb_build_object('subscription_id', current_sub.id, 'subscription_upper', upper(current_sub.effective),
                                                'new_subscription_id', new_subscription)));
    if current_sub.id is not null then
      update public.subscriptions s set effective = tstzrange(lower(s.effective), now(), '[)')
       where s.organization_id = line.organization_id and s.id = current_sub.id;
    end if;
    insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason)
    values (line.organization_id, new_subscription, line.id, new_plan.id, tstzrange(now(), null, '[)'), 'upgrade');
    perform private.log_event(line, 'plan_change_requested', null,
      jsonb_build_object('from', current_plan.code, 'to', new_plan.code, 'when', 'now'), command_id);
    return 'now';
  end if;

  -- Downgrade: at the end of the current billing period (the account's billing day, in the
  -- organization's time zone); the carrier is asked when that day comes.
  select a.billing_day into billing_day from public.accounts a where a.organization_id = line.organization_id and a.id = line.account_id;
  select o.time_zone into zone from public.organizations o where o.id = line.organization_id;
  local_now := now() at time zone zone;
  period_end := (date_trunc('month', local_now) + (billing_day - 1) * interval '1 day') at time zone zone;
  if period_end <= now() then
    period_end := (date_trunc('month', local_now) + interval '1 month' + (billing_day - 1) * interval '1 day') at time zone zone;
  end if;
  update public.subscriptions s set effective = tstzrange(lower(s.effective), period_end, '[)')
   where s.organization_id = line.organization_id and s.id = current_sub.id;
  insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason)
  values (line.organization_id, new_subscription, line.id, new_plan.id, tstzrange(period_end, null, '[)'), 'downgrade');
  perform private.log_event(line, 'plan_change_scheduled', null,
    jsonb_build_object('from', current_plan.code, 'to', new_plan.code, 'when', period_end));
  return 'at ' || to_char(period_end at time zone zone, 'YYYY-MM-DD');
end;
$$;

create or replace function private.add_add_on_line(organization_id uuid, subscriber_id uuid, add_on_id uuid)
returns public.subscriber_add_ons
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(add_add_on_line.organization_id, add_add_on_line.subscriber_id);
  extra public.add_ons;
  added public.subscriber_add_ons;
begin
  if line.status not in ('active', 'suspended') then
    raise exception 'cannot add an add-on to line % while it is %', coalesce(line.mdn, line.id::text), line.status
      using errcode = 'P0001';
  end if;
  select a.* into extra from public.add_ons a where a.organization_id = line.organization_id and a.id = add_add_on_line.add_on_id;
  if extra.id is null or not extra.active then
    raise exception 'there is no active add-on % in this organization', add_add_on_line.add_on_id using errcode = 'P0002';
  end if;
  insert into public.subscriber_add_ons (organization_id, subscriber_id, add_on_id, effective)
  values (line.organization_id, line.id, extra.id,
          case extra.recurrence when 'one_off' then tstzrange(now(), now() + interval '30 days', '[)') else tstzrange(now(), null, '[)') end)
  returning * into added;
  perform private.log_event(line, 'add_on_added', null, jsonb_build_object('add_on', extra.code, 'price_cents', extra.price_cents));
  return added;
end;
$$;

revoke all on function private.suspend_line(uuid, uuid, public.suspend_reason), private.restore_line(uuid, uuid),
  private.change_plan_line(uuid, uuid, uuid), private.add_add_on_line(uuid, uuid, uuid) from public;

-- Staff entry points --------------------------------------------------------------------

create or replace function public.activate_subscriber(
  organization_id uuid, account_id uuid, sim_id uuid, plan_id uuid, device_id uuid default null, external_id text default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  account public.accounts;
  sim public.sim_cards;
  chosen_plan public.plans;
  device public.devices;
  line public.subscribers;
  command_id uuid;
begin
  perform private.require_role(activate_subscriber.organization_id, 'operator');
  select a.* into account from public.accounts a
   where a.organization_id = activate_subscriber.organization_id and a.id = activate_subscriber.account_id;
  if account.id is null then
    raise exception 'there is no account % in this organization', activate_subscriber.account_id using errcode = 'P0002';
  end if;
  if account.status <> 'active' then
    raise exception 'account % is %; only active accounts get new lines', account.name, account.status using errcode = 'P0001';
  end if;
  select c.* into sim from public.sim_cards c
   where c.organization_id = activate_subscriber.organization_id and c.id = activate_subscriber.sim_id for update;
  if sim.id is null then
    raise exception 'there is no SIM % in this organization', activate_subscriber.sim_id using errcode = 'P0002';
  end if;
  if sim.state <> 'inventory' then
    raise exception 'SIM % is % (only SIMs in inventory can be activated)', sim.iccid, sim.state using errcode = 'P0001';
  end if;
  select p.* into chosen_plan from public.plans p
   where p.organization_id = activate_subscriber.organization_id and p.id = activate_subscriber.plan_id;
  if chosen_plan.id is null or chosen_plan.status <> 'active' then
    raise exception 'there is no active plan % in this organization', activate_subscriber.plan_id using errcode = 'P0002';
  end if;
  if not exists (select 1 from public.carrier_rate_plans r where r.organization_id = chosen_plan.organization_id
                 and r.id = chosen_plan.carrier_rate_plan_id and r.carrier_id = sim.carrier_id) then
    raise exception 'plan % is not sold on the carrier of SIM %', chosen_plan.name, sim.iccid using errcode = 'P0001';
  end if;
  if activate_subscriber.device_id is not null then
    select d.* into device from public.devices d
     where d.organization_id = activate_subscriber.organization_id and d.id = activate_subscriber.device_id;
    if device.id is null then
      raise exception 'there is no device % in this organization', activate_subscriber.device_id using errcode = 'P0002';
    end if;
    if device.compatibility = 'incompatible' then
      raise exception 'device % (%) is not compatible with the network', device.imei, coalesce(device.model, 'unknown model')
        using errcode = 'P0001';
    end if;
  end if;

  insert into public.subscribers (organization_id, account_id, carrier_id, status, current_sim_id, current_device_id, external_id)
  values (activate_subscriber.organization_id, account.id, sim.carrier_id, 'pending', sim.id, device.id, activate_subscriber.external_id)
  returning * into line;
  perform private.set_sim_state(line.organization_id, sim.id, 'assigned');
  insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective, reason)
  values (line.organization_id, line.id, chosen_plan.id, tstzrange(now(), null, '[)'), 'activation');
  command_id := private.enqueue_command(line, 'activate', private.carrier_payload(line),
                                        private.snapshot(line) || jsonb_build_object('sims', jsonb_build_array(jsonb_build_object('id', sim.id, 'state', 'inventory'))));
  perform private.log_event(line, 'activation_requested', null, jsonb_build_object('plan', chosen_plan.code, 'iccid', sim.iccid), command_id);
  return line;
end;
$$;
comment on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text) is 'Orders a new line on a SIM from inventory (operators). The line is pending until the carrier confirms; the carrier assigns the number.';

create or replace function public.suspend_subscriber(organization_id uuid, subscriber_id uuid, reason public.suspend_reason)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(suspend_subscriber.organization_id, 'agent');
  return private.suspend_line(suspend_subscriber.organization_id, suspend_subscriber.subscriber_id, suspend_subscriber.reason);
end;
$$;
comment on function public.suspend_subscriber(uuid, uuid, public.suspend_reason) is 'Suspends an active line with a reason (agents and above).';

create or replace function public.restore_subscriber(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(restore_subscriber.organization_id, 'agent');
  return private.restore_line(restore_subscriber.organization_id, restore_subscriber.subscriber_id);
end;
$$;
comment on function public.restore_subscriber(uuid, uuid) is 'Restores a suspended line (agents and above).';

create or replace function public.cancel_subscriber(organization_id uuid, subscriber_id uuid, reason text default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  command_id uuid;
begin
  perform private.require_role(cancel_subscriber.organization_id, 'operator');
  line := private.lock_line(cancel_subscriber.organization_id, cancel_subscriber.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'cancel');
  command_id := private.enqueue_command(line, 'deactivate', private.carrier_payload(line), private.snapshot(line));
  update public.subscribers s set status = 'cancelled', suspend_reason = null, cancelled_at = now()
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.end_subscriptions(line.organization_id, line.id, now());
  perform private.log_event(line, 'cancel_requested', cancel_subscriber.reason, '{}', command_id);
  return line;
end;
$$;
comment on function public.cancel_subscriber(uuid, uuid, text) is 'Cancels a line (operators): billing stops now, the number is released when the carrier confirms.';

create or replace function public.change_plan(organization_id uuid, subscriber_id uuid, plan_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(change_plan.organization_id, 'agent');
  return private.change_plan_line(change_plan.organization_id, change_plan.subscriber_id, change_plan.plan_id);
end;
$$;
comment on function public.change_plan(uuid, uuid, uuid) is 'Moves a line to another plan: an upgrade (same or higher price) now, a downgrade at the end of the billing period. Returns when: ''now'' or ''at YYYY-MM-DD''.';

create or replace function public.add_add_on(organization_id uuid, subscriber_id uuid, add_on_id uuid)
returns public.subscriber_add_ons
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(add_add_on.organization_id, 'agent');
  return private.add_add_on_line(add_add_on.organization_id, add_add_on.subscriber_id, add_add_on.add_on_id);
end;
$$;
comment on function public.add_add_on(uuid, uuid, uuid) is 'Adds an add-on to a line (agents and above); one-off packs last 30 days.';

create or replace function public.swap_sim(organization_id uuid, subscriber_id uuid, new_sim_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  sim public.sim_cards;
  command_id uuid;
begin
  perform private.require_role(swap_sim.organization_id, 'agent');
  line := private.lock_line(swap_sim.organization_id, swap_sim.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'swap the SIM of');
  select c.* into sim from public.sim_cards c where c.organization_id = line.organization_id and c.id = swap_sim.new_sim_id for update;
  if sim.id is null then
    raise exception 'there is no SIM % in this organization', swap_sim.new_sim_id using errcode = 'P0002';
  end if;
  if sim.state <> 'inventory' then
    raise exception 'SIM % is % (only SIMs in inventory can be swapped in)', sim.iccid, sim.state using errcode = 'P0001';
  end if;
  if sim.carrier_id <> line.carrier_id then
    raise exception 'SIM % belongs to another carrier than line %', sim.iccid, coalesce(line.mdn, line.id::text) using errcode = 'P0001';
  end if;
  command_id := private.enqueue_command(line, 'swap_sim',
    private.carrier_payload(line, jsonb_build_object('new_iccid', sim.iccid)),
    private.snapshot(line, jsonb_build_object('new_sim_id', sim.id)));
  perform private.set_sim_state(line.organization_id, sim.id, 'assigned');
  update public.subscribers s set current_sim_id = sim.id
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'sim_swap_requested', null, jsonb_build_object('new_iccid', sim.iccid), command_id);
  return line;
end;
$$;
comment on function public.swap_sim(uuid, uuid, uuid) is 'Moves a line to another SIM from inventory (agents and above), for a lost, damaged or eSIM swap.';

create or replace function public.change_device(organization_id uuid, subscriber_id uuid, device_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  device public.devices;
  command_id uuid;
begin
  perform private.require_role(change_device.organization_id, 'agent');
  line := private.lock_line(change_device.organization_id, change_device.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'change the device of');
  select d.* into device from public.devices d where d.organization_id = line.organization_id and d.id = change_device.device_id;
  if device.id is null then
    raise exception 'there is no device % in this organization', change_device.device_id using errcode = 'P0002';
  end if;
  if device.compatibility = 'incompatible' then
    raise exception 'device % (%) is not compatible with the network', device.imei, coalesce(device.model, 'unknown model')
      using errcode = 'P0001';
  end if;
  command_id := private.enqueue_command(line, 'change_device',
    private.carrier_payload(line, jsonb_build_object('new_imei', device.imei)), private.snapshot(line));
  update public.subscribers s set current_device_id = device.id
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'device_change_requested', null, jsonb_build_object('imei', device.imei), command_id);
  return line;
end;
$$;
comment on function public.change_device(uuid, uuid, uuid) is 'Records a new handset on a line and tells the carrier (agents and above).';

create or replace function public.port_in(
  organization_id uuid, account_id uuid, mdn text, sim_id uuid, plan_id uuid, losing_carrier text,
  account_number text, pin text, device_id uuid default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  normalized text := public.normalize_mdn(port_in.mdn);
  command_id uuid;
begin
  perform private.require_role(port_in.organization_id, 'operator');
  if normalized is null then
    raise exception 'MDN % is not a valid phone number', port_in.mdn using errcode = '23514';
  end if;
  -- Ordered like an activation, then switched to a port: same checks on account, SIM, plan, device.
  line := public.activate_subscriber(port_in.organization_id, port_in.account_id, port_in.sim_id, port_in.plan_id, port_in.device_id);
  update public.carrier_commands c
     set kind = 'port_in',
         payload = c.payload || jsonb_build_object('mdn', normalized, 'losing_carrier', port_in.losing_carrier)
   where c.organization_id = line.organization_id and c.subscriber_id = line.id and c.status = 'pending'
  returning c.id into command_id;
  update public.subscribers s set mdn = normalized
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  insert into public.port_requests (organization_id, subscriber_id, direction, mdn, other_carrier, account_number, pin)
  values (line.organization_id, line.id, 'in', normalized, port_in.losing_carrier, port_in.account_number, port_in.pin);
  perform private.log_event(line, 'port_in_requested', null, jsonb_build_object('mdn', normalized, 'losing_carrier', port_in.losing_carrier), command_id);
  return line;
end;
$$;
comment on function public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid) is 'Brings a customer''s number from another carrier (operators). The line is pending until the port completes.';

create or replace function public.port_out(organization_id uuid, subscriber_id uuid, gaining_carrier text)
returns public.port_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  command_id uuid;
  request public.port_requests;
begin
  perform private.require_role(port_out.organization_id, 'operator');
  line := private.lock_line(port_out.organization_id, port_out.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'port out');
  command_id := private.enqueue_command(line, 'port_out',
    private.carrier_payload(line, jsonb_build_object('gaining_carrier', port_out.gaining_carrier)), private.snapshot(line));
  insert into public.port_requests (organization_id, subscriber_id, direction, mdn, other_carrier)
  values (line.organization_id, line.id, 'out', line.mdn, port_out.gaining_carrier) returning * into request;
  perform private.log_event(line, 'port_out_requested', null, jsonb_build_object('gaining_carrier', port_out.gaining_carrier), command_id);
  return request;
end;
$$;
comment on function public.port_out(uuid, uuid, text) is 'Releases a line''s number to another carrier (operators); billing stops when the carrier confirms.';

revoke all on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text), public.suspend_subscriber(uuid, uuid, public.suspend_reason),
  public.restore_subscriber(uuid, uuid), public.cancel_subscriber(uuid, uuid, text), public.change_plan(uuid, uuid, uuid),
  public.add_add_on(uuid, uuid, uuid), public.swap_sim(uuid, uuid, uuid), public.change_device(uuid, uuid, uuid),
  public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid), public.port_out(uuid, uuid, text) from public, anon;
grant execute on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text), public.suspend_subscriber(uuid, uuid, public.suspend_reason),
  public.restore_subscriber(uuid, uuid), public.cancel_subscriber(uuid, uuid, text), public.change_plan(uuid, uuid, uuid),
  public.add_add_on(uuid, uuid, uuid), public.swap_sim(uuid, uuid, uuid), public.change_device(uuid, uuid, uuid),
  public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid), public.port_out(uuid, uuid, text) to authenticated, service_role;
