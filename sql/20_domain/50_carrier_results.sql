-- The carrier's answer. The worker (or a carrier callback) reports each command's outcome
-- here: success finalizes the line's network state; refusal restores the business state
-- the command was issued from and records the carrier's reason.

create or replace function public.complete_carrier_command(
  organization_id uuid, command_id uuid, succeeded boolean, result jsonb default '{}', error text default null)
returns public.carrier_commands
language plpgsql
security definer
set search_path = ''
as $$
declare
  command public.carrier_commands;
  line public.subscribers;
  snapshot jsonb;
  sim jsonb;
  outcome public.command_status := case when succeeded then 'succeeded' else 'failed' end;
begin
  select c.* into command from public.carrier_commands c
   where c.organization_id = complete_carrier_command.organization_id and c.id = complete_carrier_command.command_id
   for update;
  if command.id is null then
    raise exception 'there is no carrier command % in this organization', complete_carrier_command.command_id using errcode = 'P0002';
  end if;
  if command.status in ('succeeded', 'failed', 'dead') then
    if command.status = outcome then
      return command;  -- a repeated callback: already applied
    end if;
    raise exception 'carrier command % already ended as %', command.id, command.status using errcode = 'P0001';
  end if;
  line := private.lock_line(command.organization_id, command.subscriber_id);
  snapshot := command.rollback_state;

  if succeeded then
    case command.kind
      when 'activate', 'port_in' then
        update public.subscribers s set status = 'active', network_status = 'active', activated_at = now(),
               mdn = coalesce(public.normalize_mdn(result ->> 'mdn'), s.mdn)
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'active');
        update public.port_requests p set status = 'completed', completed_at = now()
         where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'in' and p.status = 'submitted';
      when 'suspend' then
        update public.subscribers s set network_status = 'suspended'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'suspended');
      when 'restore' then
        update public.subscribers s set network_status = 'active'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'active');
      when 'deactivate' then
        update public.subscribers s set network_status = 'deactivated'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'deactivated');
      when 'port_out' then
        update public.subscribers s set status = 'ported_out', network_status = 'deactivated', suspend_reason = null, cancelled_at = now()
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'deactivated');
        perform private.end_subscriptions(line.organization_id, line.id, now());
        update public.port_requests p set status = 'completed', completed_at = now()
         where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'out' and p.status = 'submitted';
      when 'swap_sim' then
        perform private.set_sim_state(line.organization_id, (snapshot ->> 'current_sim_id')::uuid, 'deactivated');
        perform private.set_sim_state(line.organization_id, line.current_sim_id,
          case line.status when 'suspended' then 'suspended'::public.sim_state else 'active' end);
      when 'change_plan' then
        update public.subscriptions s set carrier_confirmed_at = now()
         where s.organization_id = line.organization_id and s.id = (snapshot ->> 'new_subscription_id')::uuid;
      when 'change_device' then
        null;  -- the business record already names the new device
    end case;
    perform private.log_event(line, command.kind::text || '_confirmed', null,
      coalesce(result, '{}'), command.id);
  else
    -- Put the line (and its SIMs) back as they were when the command was issued.
    update public.subscribers s
       set status = (snapshot ->> 'status')::public.line_status,
           network_status = (snapshot ->> 'network_status')::public.network_status,
           suspend_reason = (snapshot ->> 'suspend_reason')::public.suspend_reason,
           current_sim_id = (snapshot ->> 'current_sim_id')::uuid,
           current_device_id = (snapshot ->> 'current_device_id')::uuid,
           cancelled_at = case when command.kind = 'deactivate' then null else s.cancelled_at end
     where s.organization_id = line.organization_id and s.id = line.id;
    for sim in select * from jsonb_array_elements(snapshot -> 'sims') loop
      perform private.set_sim_state(line.organization_id, (sim ->> 'id')::uuid, (sim ->> 'state')::public.sim_state);
    end loop;
    if command.kind in ('activate', 'port_in') then
      -- A line the carrier never accepted: it failed, its SIM goes back to inventory.
      update public.subscribers s set status = 'failed', network_status = 'none', current_sim_id = null
       where s.organization_id = line.organization_id and s.id = line.id;
      perform private.end_subscriptions(line.organization_id, line.id, now());
      update public.port_requests p set status = 'rejected', rejection_reason = complete_carrier_command.error
       where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'in' and p.status = 'submitted';
    elsif command.kind = 'change_plan' and not coalesce((snapshot ->> 'scheduled')::boolean, false) then
      -- An upgrade the carrier refused: back to the previous plan. (A refused scheduled
      -- downgrade keeps its new subscription; the refusal in the feed tells staff to retry.)
      delete from public.subscriptions s
       where s.organization_id = line.organization_id and s.id = (snapshot ->> 'new_subscription_id')::uuid;
      update public.subscriptions s set effective = tstzrange(lower(s.effective), (snapshot ->> 'subscription_upper')::timestamptz, '[)')
       where s.organization_id = line.organization_id and s.id = (snapshot ->> 'subscription_id')::uuid;
    elsif command.kind = 'deactivate' then
      update public.subscriptions s set effective = tstzrange(lower(s.effective), null, '[)')
       where s.organization_id = line.organization_id and s.subscriber_id = line.id
         and s.id = (select s2.id from public.subscriptions s2 where s2.organization_id = line.organization_id
                     and s2.subscriber_id = line.id order by lower(s2.effective) desc limit 1);
    elsif command.kind = 'port_out' then
      update public.port_requests p set status = 'rejected', rejection_reason = complete_carrier_command.error
       where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'out' and p.status = 'submitted';
    end if;
    select s.* into line from public.subscribers s where s.organization_id = command.organization_id and s.id = command.subscriber_id;
    perform private.log_event(line, command.kind::text || '_refused',
      coalesce(complete_carrier_command.error, 'no reason given'), coalesce(result, '{}'), command.id);
  end if;

  update public.carrier_commands c
     set status = outcome, result = complete_carrier_command.result, error = complete_carrier_command.error,
         carrier_request_id = coalesce(complete_carrier_command.result ->> 'requestId', c.carrier_request_id), completed_at = now()
   where c.organization_id = command.organization_id and c.id = command.id
  returning * into command;
  return command;
end;
$$;
comment on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) is 'Records the carrier''s answer to a command (services only): success finalizes the network state, refusal restores the business state with the carrier''s reason. Repeating the same answer changes nothing.';
revoke all on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) from public, anon, authenticated;
grant execute on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) to service_role;

-- Scheduled downgrades whose day has come: ask the carrier now (the server's scheduler calls it).
create or replace function public.apply_scheduled_plan_changes(as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  due record;
  line public.subscribers;
  queued integer := 0;
begin
  for due in
    select s.organization_id, s.subscriber_id, s.id, p.carrier_rate_plan_id
    from public.subscriptions s
    join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
    join public.subscribers l on l.organization_id = s.organization_id and l.id = s.subscriber_id
    where lower(s.effective) <= as_of and s.reason = 'downgrade' and s.carrier_confirmed_at is null
      and l.status in ('active', 'suspended')
      and not exists (select 1 from public.carrier_commands c where c.organization_id = s.organization_id
                      and c.subscriber_id = s.subscriber_id and c.status in ('pending', 'in_flight'))
      and not exists (select 1 from public.carrier_commands c where c.organization_id = s.organization_id
                      and c.subscriber_id = s.subscriber_id and c.kind = 'change_plan'
                      and c.rollback_state ->> 'new_subscription_id' = s.id::text)
  loop
    line := private.lock_line(due.organization_id, due.subscriber_id);
    begin
      perform private.enqueue_command(line, 'change_plan',
        private.carrier_payload(line) || jsonb_build_object('rate_plan',
          (select r.code from public.carrier_rate_plans r where r.organization_id = line.organization_id and r.id = due.carrier_rate_plan_id)),
        private.snapshot(line, jsonb_build_object('new_subscription_id', due.id, 'scheduled', true)));
      queued := queued + 1;
    exception when sqlstate 'P0001' then
      -- A carrier limit (daily actions): keep the others going; this one is retried next run.
      perform private.log_event(line, 'plan_change_deferred', sqlerrm, jsonb_build_object('subscription_id', due.id));
    end;
  end loop;
  return queued;
end;
$$;
comment on function public.apply_scheduled_plan_changes(timestamptz) is 'Queues the carrier plan change of every downgrade whose period has started (services only); returns how many.';
revoke all on function public.apply_scheduled_plan_changes(timestamptz) from public, anon, authenticated;
grant execute on function public.apply_scheduled_plan_changes(timestamptz) to service_role;
