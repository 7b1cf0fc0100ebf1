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
