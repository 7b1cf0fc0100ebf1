-- Carrier callbacks (POST /functions/v1/carriers/verizon|att|tmobile), after the server checked
-- each carrier's authentication. Three kinds of news arrive:
--   * the asynchronous result of a command Wingtel sent (ThingSpace answers every provisioning
--     request with a requestId and reports the outcome later on its CarrierService callback):
--     the command is found by carrier_request_id and completed through complete_carrier_command,
--     which finalizes the line's network state or rolls the business state back;
--   * a line's state changed at the carrier (AT&T SIM_STATE_CHANGE push, ThingSpace suspension
--     status and external provisioning changes, aggregator status events): an open command
--     expecting that state is completed; otherwise the line's network_status follows the carrier
--     and the change is written to the line's history for operations to review;
--   * usage of a line (ThingSpace DeviceUsage with usageHistory records, the aggregator's usage
--     events): the records go into usage ingestion (ingest_usage_records), source = the carrier.
--     AT&T's push carries cycle-to-date totals, not records: its usage comes by file.
--
-- Payloads, as the server passes them:
--   verizon  the JSON body: {requestId, deviceIds:[{id, kind}], deviceResponse:{…} | faultResponse:{faultcode, faultstring}
--            | usageHistory:[{timestamp, bytesUsed, smsUsed}], …}
--   att      the form parameters as a JSON object: {eventId, eventType, timestamp, data (XML), signature2}
--   tmobile  the JSON body: {eventId, eventType, requestId?, msisdn?, iccid?, status?, error?:{code, message},
--            records?:[{recordId, recordedAt, kind, quantity}] with eventType usage}

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

-- The line a carrier callback is about: by the SIM's ICCID or by MDN, among the lines on that
-- carrier's adapter; one matching both first, then a live line, then the newest.
create or replace function private.carrier_line(adapter public.carrier_adapter, iccid text, mdn text)
returns public.subscribers
language sql
stable
security definer
set search_path = ''
as $$
  select s.* from public.subscribers s
    join public.carriers k on k.organization_id = s.organization_id and k.id = s.carrier_id and k.adapter = carrier_line.adapter
    left join public.sim_cards c on c.organization_id = s.organization_id and c.id = s.current_sim_id
   where (carrier_line.iccid is not null and c.iccid = carrier_line.iccid)
      or (carrier_line.mdn is not null and s.mdn = public.normalize_mdn(carrier_line.mdn))
   order by (carrier_line.iccid is not null and c.iccid = carrier_line.iccid
             and carrier_line.mdn is not null and s.mdn = public.normalize_mdn(carrier_line.mdn)) desc,
            (s.status in ('pending', 'active', 'suspended')) desc, s.created_at desc
   limit 1
$$;
comment on function private.carrier_line(public.carrier_adapter, text, text) is 'The line a carrier callback names by ICCID or MDN on that carrier (one matching both first, then a live line, then the newest); null fields when none.';

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
  usage jsonb;
  batch public.usage_batches;
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
      event_type := case when jsonb_typeof(event -> 'usageHistory') = 'array' then 'DeviceUsage'
                         when correlation is not null then 'CarrierService' else 'DeviceStatus' end;
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

  -- 0. Usage the carrier reports for a line — ThingSpace DeviceUsage carrying usageHistory
  -- records ({timestamp, bytesUsed, smsUsed}, as POST /devices/usage/actions/list returns them),
  -- the aggregator's usage events ({eventType: usage, msisdn|iccid, records: [{recordId,
  -- recordedAt, kind, quantity}]}) — goes into usage ingestion: re-delivered records count once,
  -- unreadable ones are quarantined.
  if event_type in ('DeviceUsage', 'usage')
     and (jsonb_typeof(event -> 'usageHistory') = 'array' or jsonb_typeof(event -> 'records') = 'array') then
    line := private.carrier_line(route_adapter, device_iccid, device_mdn);
    if line.id is null then
      return private.finish_event(carrier, event_id, null, 'unmatched',
        format('usage for no known line (ICCID %s / MDN %s)', coalesce(device_iccid, '-'), coalesce(device_mdn, '-')));
    end if;
    if carrier = 'verizon' then
      select coalesce(jsonb_agg(jsonb_build_object('mdn', line.mdn, 'recorded_at', h.value ->> 'timestamp', 'kind', q.kind,
                                                   'quantity', q.amount,
                                                   'record_id', format('%s|%s|%s', coalesce(device_iccid, device_mdn), h.value ->> 'timestamp', q.kind))
                                order by h.n, q.kind), '[]')
        into usage
      from jsonb_array_elements(event -> 'usageHistory') with ordinality as h (value, n)
      cross join lateral (values ('data', h.value ->> 'bytesUsed'), ('sms', h.value ->> 'smsUsed')) as q (kind, amount)
      where q.amount is not null;
    else
      select coalesce(jsonb_agg(jsonb_build_object('mdn', line.mdn, 'recorded_at', coalesce(u.value ->> 'recordedAt', u.value ->> 'timestamp'),
                                                   'kind', lower(u.value ->> 'kind'), 'quantity', u.value ->> 'quantity',
                                                   'record_id', u.value ->> 'recordId') order by u.n), '[]')
        into usage
      from jsonb_array_elements(event -> 'records') with ordinality as u (value, n);
    end if;
    batch := public.ingest_usage_records(line.organization_id, carrier, usage, carrier || ' callback ' || event_id);
    return private.finish_event(carrier, event_id, line.organization_id, 'applied',
      format('usage batch %s: %s records, %s new, %s already counted, %s quarantined', batch.id, batch.rows_total, batch.rows_inserted,
             batch.rows_duplicate, batch.rows_quarantined));
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
  line := private.carrier_line(route_adapter, device_iccid, device_mdn);
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
comment on function public.handle_carrier_event(text, jsonb, text) is 'Applies one authenticated carrier callback once: usage records of a line (into usage ingestion), a command result correlated by the carrier''s request id (completed or rolled back), or a line state change reported by the carrier (confirms an open command, or moves network_status and notes it in the line''s history). Returns {outcome, event_id, detail}.';

revoke all on function private.carrier_network_state(text, text), private.carrier_adapter_of(text),
  private.carrier_line(public.carrier_adapter, text, text),
  public.handle_carrier_event(text, jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_carrier_event(text, jsonb, text) to service_role;
