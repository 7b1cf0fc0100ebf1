-- Twilio SMS (POST /functions/v1/twilio-sms and /twilio-status), after the server checked
-- X-Twilio-Signature. Inbound messages are answered with TwiML built here:
--   BAL     what the account owes (open invoices) and its wallet balance
--   USAGE   the line's data, minutes and messages since its cycle started, against its plan
--   HELP    who the sender is talking to and the keywords
--   STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT — opt-out, always honoured
--   START, YES, UNSTOP — opt-in again
-- Anything else goes to customer care (public.care_inbox) with an acknowledgement.
-- A re-delivered message (same MessageSid) is answered with an empty <Response/>: the first
-- delivery's reply is not sent twice.

create or replace function private.xml_escape(value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(replace(replace(coalesce(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&apos;')
$$;
comment on function private.xml_escape(text) is 'Escapes text for XML element content and attributes (TwiML).';

create or replace function private.twiml(message text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when message is null then '<?xml version="1.0" encoding="UTF-8"?><Response/>'
              else '<?xml version="1.0" encoding="UTF-8"?><Response><Message>' || private.xml_escape(message) || '</Message></Response>' end
$$;
comment on function private.twiml(text) is 'A TwiML answer: one <Message> with the text, or an empty <Response/> (nothing is sent) for null.';

create or replace function private.sms_status_rank(status public.sms_status)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case status
    when 'accepted' then 1 when 'scheduled' then 1 when 'queued' then 2 when 'sending' then 3 when 'receiving' then 3
    when 'sent' then 4 when 'received' then 5
    when 'delivered' then 6 when 'undelivered' then 6 when 'failed' then 6 when 'canceled' then 6 when 'partially_delivered' then 6
    when 'read' then 7 end
$$;
comment on function private.sms_status_rank(public.sms_status) is 'How far along a message is; a status callback only moves a message to a higher rank (they arrive out of order).';

create or replace function private.sms_keyword(body text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when k in ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT') then 'STOP'
    when k in ('START', 'YES', 'UNSTOP') then 'START'
    when k in ('HELP', 'INFO') then 'HELP'
    when k in ('BAL', 'BALANCE') then 'BAL'
    when k in ('USAGE', 'DATA') then 'USAGE'
  end
  from (select upper(regexp_replace(coalesce(body, ''), '^[[:space:][:punct:]]+|[[:space:][:punct:]]+$', '', 'g')) as k) t
$$;
comment on function private.sms_keyword(text) is 'The command a text is (the whole message, any case, surrounding spaces and punctuation ignored): STOP, START, HELP, BAL, USAGE, or null.';

create or replace function private.sms_usage_reply(organization_id uuid, line public.subscribers)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  zone text;
  today date;
  cycle_start date;
  plan public.plans;
  used record;
  billing_day integer;
begin
  select o.time_zone into zone from public.organizations o where o.id = sms_usage_reply.organization_id;
  select a.billing_day into billing_day from public.accounts a where a.organization_id = line.organization_id and a.id = line.account_id;
  today := (now() at time zone zone)::date;
  cycle_start := make_date(extract(year from today)::int, extract(month from today)::int, billing_day);
  if cycle_start > today then
    cycle_start := (cycle_start - interval '1 month')::date;
  end if;
  select p.* into plan from public.subscriptions s join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now();
  select coalesce(sum(d.data_bytes), 0) as data_bytes, coalesce(sum(d.voice_seconds), 0) as voice_seconds,
         coalesce(sum(d.sms_count), 0) as sms_count into used
  from public.usage_daily d
  where d.organization_id = line.organization_id and d.subscriber_id = line.id and d.day >= cycle_start;
  return format('Since %s: data %s GB of %s, %s of %s min, %s of %s texts.',
    to_char(cycle_start, 'Mon FMDD'),
    to_char(used.data_bytes / 1073741824.0, 'FM999990.00'),
    case when plan.id is null then 'no plan' when plan.data_mb is null then 'unlimited' else to_char(plan.data_mb / 1024.0, 'FM99990.##') || ' GB' end,
    ceil(used.voice_seconds / 60.0)::bigint,
    case when plan.id is null then '0' when plan.voice_minutes is null then 'unlimited' else plan.voice_minutes::text end,
    used.sms_count,
    case when plan.id is null then '0' when plan.sms is null then 'unlimited' else plan.sms::text end);
end;
$$;
comment on function private.sms_usage_reply(uuid, public.subscribers) is 'The USAGE answer: the line''s usage since its current cycle started against its plan''s allowances.';

create or replace function public.handle_twilio_sms(params jsonb, request_id text default null)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  sid text := params ->> 'MessageSid';
  sender text := public.normalize_mdn(params ->> 'From');
  number public.messaging_numbers;
  line public.subscribers;
  account public.accounts;
  org public.organizations;
  keyword text;
  reply text;
  inbound uuid;
  opted_out boolean;
  owed bigint;
begin
  if jsonb_typeof(params) is distinct from 'object' or nullif(sid, '') is null or params ->> 'From' is null or params ->> 'To' is null then
    raise exception 'not a Twilio message: MessageSid, From and To are required' using errcode = '22023';
  end if;
  if length(coalesce(params ->> 'Body', '')) > 1600 then
    raise exception 'an SMS body is at most 1600 characters' using errcode = '22023';
  end if;
  if not private.receive_event('twilio', sid, 'sms.inbound', params, request_id) then
    return private.twiml(null);
  end if;
  select n.* into number from public.messaging_numbers n where n.phone_number = params ->> 'To';
  if number.id is null then
    perform private.finish_event('twilio', sid, null, 'unmatched', 'no organization owns ' || (params ->> 'To'));
    return private.twiml(null);
  end if;
  select o.* into org from public.organizations o where o.id = number.organization_id;
  select s.* into line from public.subscribers s
   where s.organization_id = org.id and s.mdn = sender and s.status not in ('cancelled', 'ported_out')
   order by s.created_at desc limit 1;
  if line.id is not null then
    select a.* into account from public.accounts a where a.organization_id = org.id and a.id = line.account_id;
  end if;
  keyword := private.sms_keyword(params ->> 'Body');
  opted_out := exists (select 1 from public.sms_opt_outs o where o.organization_id = org.id and o.phone_number = params ->> 'From');

  insert into public.sms_messages (organization_id, direction, provider_sid, from_number, to_number, body, num_media, status,
                                   account_id, subscriber_id, keyword, routed_to)
  values (org.id, 'inbound', sid, params ->> 'From', params ->> 'To', coalesce(params ->> 'Body', ''),
          coalesce(nullif(params ->> 'NumMedia', '')::integer, 0), 'received', account.id, line.id, keyword,
          case when keyword is null then 'care' end)
  returning id into inbound;

  case keyword
    when 'STOP' then
      insert into public.sms_opt_outs (organization_id, phone_number, keyword)
      values (org.id, params ->> 'From', upper(btrim(params ->> 'Body')))
      on conflict (organization_id, phone_number) do nothing;
      reply := format('%s: you are unsubscribed and will receive no more messages. Reply START to subscribe again.', org.name);
    when 'START' then
      delete from public.sms_opt_outs o where o.organization_id = org.id and o.phone_number = params ->> 'From';
      reply := format('%s: you are subscribed again. Reply HELP for help, STOP to unsubscribe.', org.name);
    when 'HELP' then
      reply := format('%s: reply BAL for your balance, USAGE for this cycle''s usage, STOP to unsubscribe. Anything else reaches our care team.', org.name);
    when 'BAL' then
      if account.id is null then
        reply := format('%s: this number is not an active line with us. Write to us and our care team will help.', org.name);
      else
        select coalesce(sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents), 0) into owed
        from public.invoices i where i.organization_id = org.id and i.account_id = account.id and i.status in ('open', 'past_due');
        reply := format('%s: you owe %s; wallet balance %s.', org.name, private.format_money(owed, org.currency),
                        private.format_money(private.wallet_balance(org.id, account.id), org.currency));
      end if;
    when 'USAGE' then
      if line.id is null then
        reply := format('%s: this number is not an active line with us. Write to us and our care team will help.', org.name);
      else
        reply := org.name || ': ' || private.sms_usage_reply(org.id, line);
      end if;
    else
      reply := format('%s: thanks, our care team will answer you here soon. Reply HELP for options.', org.name);
  end case;
  -- An opted-out number gets nothing but the answers to START and HELP.
  if opted_out and keyword is distinct from 'START' and keyword is distinct from 'HELP' then
    reply := null;
  end if;
  if reply is not null then
    insert into public.sms_messages (organization_id, direction, from_number, to_number, body, status, account_id, subscriber_id, in_reply_to)
    -- Twilio sends a TwiML reply itself (and gives it a SID Wingtel never sees): recorded as sent,
    -- so the SMS outbox (which sends accepted messages) does not send it again.
    values (org.id, 'outbound', params ->> 'To', params ->> 'From', reply, 'sent', account.id, line.id, inbound);
  end if;
  perform private.finish_event('twilio', sid, org.id, 'applied', coalesce(keyword, 'care'));
  return private.twiml(reply);
end;
$$;
comment on function public.handle_twilio_sms(jsonb, text) is 'Records one verified inbound SMS (Twilio form parameters as JSON) once and returns the TwiML answer: keyword replies, opt-out/opt-in, or routing to customer care. A repeated MessageSid gets an empty <Response/>.';

create or replace function public.handle_twilio_status(params jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  sid text := params ->> 'MessageSid';
  new_status public.sms_status;
  message public.sms_messages;
  event_id text;
begin
  if jsonb_typeof(params) is distinct from 'object' or nullif(sid, '') is null or params ->> 'MessageStatus' is null then
    raise exception 'not a Twilio status callback: MessageSid and MessageStatus are required' using errcode = '22023';
  end if;
  if not exists (select 1 from pg_catalog.pg_enum e where e.enumtypid = 'public.sms_status'::regtype and e.enumlabel = params ->> 'MessageStatus') then
    raise exception 'unknown Twilio MessageStatus %', params ->> 'MessageStatus' using errcode = '22023';
  end if;
  new_status := (params ->> 'MessageStatus')::public.sms_status;
  -- One status of one message is one event; the same status again is a duplicate.
  event_id := sid || ':' || new_status::text;
  if not private.receive_event('twilio', event_id, 'sms.status', params, request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  select m.* into message from public.sms_messages m where m.provider_sid = sid for update;
  if message.id is null then
    return private.finish_event('twilio', event_id, null, 'unmatched', 'no message ' || sid);
  end if;
  if private.sms_status_rank(new_status) <= private.sms_status_rank(message.status) then
    return private.finish_event('twilio', event_id, message.organization_id, 'ignored',
      format('%s arrived after %s', new_status, message.status));
  end if;
  update public.sms_messages m set status = new_status, error_code = coalesce(nullif(params ->> 'ErrorCode', ''), m.error_code)
   where m.organization_id = message.organization_id and m.id = message.id;
  return private.finish_event('twilio', event_id, message.organization_id, 'applied', format('%s → %s', message.status, new_status));
end;
$$;
comment on function public.handle_twilio_status(jsonb, text) is 'Applies one verified Twilio status callback: the message moves forward only (a late "sent" after "delivered" is ignored), with the error code of a failure.';

-- Customer care's queue: free-text messages no staff member has answered since.
create or replace view public.care_inbox with (security_invoker = true) as
select m.organization_id, m.id as message_id, m.created_at, m.from_number, m.account_id, m.subscriber_id, m.body
from public.sms_messages m
where m.routed_to = 'care'
  and not exists (select 1 from public.sms_messages r
                  where r.organization_id = m.organization_id and r.direction = 'outbound' and r.to_number = m.from_number
                    and r.sent_by is not null and r.created_at >= m.created_at);
comment on view public.care_inbox is 'Inbound texts customer care has not answered yet: free text routed to care with no later message to the number written by a staff member (automatic replies do not count).';

revoke all on function private.xml_escape(text), private.twiml(text), private.sms_status_rank(public.sms_status), private.sms_keyword(text),
  private.sms_usage_reply(uuid, public.subscribers), public.handle_twilio_sms(jsonb, text), public.handle_twilio_status(jsonb, text)
  from public, anon, authenticated;
grant execute on function public.handle_twilio_sms(jsonb, text), public.handle_twilio_status(jsonb, text) to service_role;
