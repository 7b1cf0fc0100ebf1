-- The SMS outbox: outbound messages written by staff (or queued with public.send_sms) wait
-- with status accepted and no Twilio SID until the SMS sender of `wingtel serve` posts them to
-- Twilio's Messages API; Twilio's status callbacks then move them forward. TwiML replies are
-- recorded as sent and never pass through here.

create or replace function public.send_sms(organization_id uuid, to_number text, body text, account_id uuid default null)
returns public.sms_messages
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := send_sms.organization_id;
  sender text;
  message public.sms_messages;
  recipient text := coalesce(public.normalize_mdn(send_sms.to_number), send_sms.to_number);
begin
  perform private.require_role(org, 'agent');
  if nullif(btrim(send_sms.body), '') is null or length(send_sms.body) > 1600 then
    raise exception 'an SMS body has 1 to 1600 characters' using errcode = '22023';
  end if;
  if recipient !~ '^\+[1-9][0-9]{7,14}$' then
    raise exception '% is not a phone number', send_sms.to_number using errcode = '22023', hint = 'Use E.164, e.g. +13125550101.';
  end if;
  if exists (select 1 from public.sms_opt_outs o where o.organization_id = org and o.phone_number = recipient) then
    raise exception '% has opted out (STOP) of this organization''s messages', recipient using errcode = 'P0001',
      hint = 'The number must text START before it can be messaged again.';
  end if;
  select n.phone_number into sender from public.messaging_numbers n where n.organization_id = org order by n.created_at, n.id limit 1;
  if sender is null then
    raise exception 'organization % has no SMS number', org using errcode = 'P0002', hint = 'Add one to public.messaging_numbers.';
  end if;
  insert into public.sms_messages (organization_id, direction, from_number, to_number, body, status, account_id, sent_by, next_attempt_at)
  values (org, 'outbound', sender, recipient, send_sms.body, 'accepted', send_sms.account_id, auth.uid(), now())
  returning * into message;
  return message;
end;
$$;
comment on function public.send_sms(uuid, text, text, uuid) is 'Queues an SMS from the organization''s first number (agents and up, services): refused for an opted-out number. The SMS sender of `wingtel serve` posts it to Twilio.';

-- Wake the sender when a message is queued.
create or replace function private.notify_sms_outbox()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('wingtel_sms_outbox', '');
  return null;
end;
$$;
comment on function private.notify_sms_outbox() is 'Statement trigger on sms_messages: NOTIFY wingtel_sms_outbox so the SMS sender wakes for a queued message.';
create or replace trigger sms_messages_outbox after insert on public.sms_messages
  for each statement execute function private.notify_sms_outbox();

create or replace function public.claim_sms_messages(worker text, max_count integer default 20, lease interval default '60 seconds')
returns table (organization_id uuid, id uuid, from_number text, to_number text, body text, attempts integer)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Messages to numbers that opted out after they were queued are not sent.
  update public.sms_messages m set status = 'canceled', error_code = 'opted_out', next_attempt_at = null
   where m.direction = 'outbound' and m.status = 'accepted' and m.provider_sid is null
     and exists (select 1 from public.sms_opt_outs o where o.organization_id = m.organization_id and o.phone_number = m.to_number);
  return query
  with ready as (
    select m.organization_id, m.id from public.sms_messages m
    where m.direction = 'outbound' and m.status = 'accepted' and m.provider_sid is null
      and coalesce(m.next_attempt_at, m.created_at) <= now() and (m.lease_until is null or m.lease_until < now())
    order by coalesce(m.next_attempt_at, m.created_at)
    limit greatest(claim_sms_messages.max_count, 0)
    for update skip locked
  )
  update public.sms_messages m
     set lease_until = now() + claim_sms_messages.lease, attempts = m.attempts + 1
    from ready r
   where m.organization_id = r.organization_id and m.id = r.id
  returning m.organization_id, m.id, m.from_number, m.to_number, m.body, m.attempts;
end;
$$;
comment on function public.claim_sms_messages(text, integer, interval) is 'Takes up to max_count queued outbound messages for one sender under a lease (SKIP LOCKED); cancels those whose recipient has opted out.';

create or replace function public.finish_sms_message(
  organization_id uuid, id uuid, provider_sid text default null, status public.sms_status default 'queued',
  error_code text default null, retry_after interval default null)
returns public.sms_messages
language plpgsql
security definer
set search_path = ''
as $$
declare
  message public.sms_messages;
begin
  select m.* into message from public.sms_messages m
   where m.organization_id = finish_sms_message.organization_id and m.id = finish_sms_message.id for update;
  if message.id is null then
    raise exception 'there is no SMS % in this organization', finish_sms_message.id using errcode = 'P0002';
  end if;
  if finish_sms_message.provider_sid is not null then
    -- Twilio took it.
    update public.sms_messages m set provider_sid = finish_sms_message.provider_sid, status = finish_sms_message.status, lease_until = null,
           next_attempt_at = null
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  elsif finish_sms_message.retry_after is not null and message.attempts < 5 then
    update public.sms_messages m set lease_until = null, error_code = finish_sms_message.error_code,
           next_attempt_at = now() + greatest(finish_sms_message.retry_after, least(power(2, message.attempts), 300) * interval '1 second')
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  else
    update public.sms_messages m set status = 'failed', error_code = coalesce(finish_sms_message.error_code, 'send_failed'), lease_until = null,
           next_attempt_at = null
     where m.organization_id = message.organization_id and m.id = message.id returning * into message;
  end if;
  return message;
end;
$$;
comment on function public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval) is 'The SMS sender''s outcome: Twilio''s SID and status; or, with retry_after, try again later (at most 5 attempts, backoff 2^n s up to 5 min); else failed with Twilio''s error code.';

revoke all on function public.send_sms(uuid, text, text, uuid), public.claim_sms_messages(text, integer, interval),
  public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval), private.notify_sms_outbox() from public, anon, authenticated;
grant execute on function public.send_sms(uuid, text, text, uuid) to authenticated, service_role;
grant execute on function public.claim_sms_messages(text, integer, interval),
  public.finish_sms_message(uuid, uuid, text, public.sms_status, text, interval) to service_role;
