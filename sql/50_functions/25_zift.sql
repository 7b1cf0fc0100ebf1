-- Zift notifications (POST /functions/v1/zift-webhook). Zift's notification format is not
-- published, so a notification is never trusted as it comes: the server checks its HMAC, then
-- asks the Zift gateway for the transaction (`requestType=find`) and passes both here; what is
-- applied comes from the gateway's answer (the confirmation), the notification only names the
-- transaction.
--   sale / capture approved (responseCode A…)  → a payment (once per transaction id)
--   sale declined (any other code but X02)      → a failed payment attempt (feeds dunning)
--   X02 (pending)                               → nothing yet (ignored; the next notification applies it)
--   refund / void approved                      → a refund of the original payment
-- The account: userDefinedField1 (= the Wingtel account id Wingtel sends with each charge);
-- userDefinedField2 names the payment charge when Wingtel sent the sale (sql/40_billing/35_autopay.sql).

create or replace function public.handle_zift_event(notification jsonb, confirmation jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  transaction_id text := coalesce(confirmation ->> 'transactionId', notification ->> 'transactionId');
  kind text := lower(coalesce(confirmation ->> 'transactionType', notification ->> 'transactionType', 'sale'));
  code text := coalesce(confirmation ->> 'responseCode', '');
  event_id text;
  account public.accounts;
  payment public.payments;
  charge public.payment_charges;
  amount bigint;
  original text := confirmation ->> 'originalTransactionId';
begin
  if jsonb_typeof(notification) is distinct from 'object' or jsonb_typeof(confirmation) is distinct from 'object'
     or nullif(transaction_id, '') is null then
    raise exception 'a Zift notification names a transactionId, and the gateway''s confirmation must be given' using errcode = '22023';
  end if;
  if (confirmation ->> 'amount') !~ '^[0-9]+$' then
    raise exception 'the Zift confirmation has no amount in cents' using errcode = '22023';
  end if;
  amount := (confirmation ->> 'amount')::bigint;
  -- One transaction in one state is one event: a pending sale that is approved later is a new event.
  event_id := transaction_id || ':' || kind || ':' || coalesce(nullif(left(code, 1), ''), '?');
  if not private.receive_event('zift', event_id, kind, jsonb_build_object('notification', notification, 'confirmation', confirmation), request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  select a.* into account from public.accounts a where a.id = private.try_uuid(confirmation ->> 'userDefinedField1');
  if account.id is null then
    return private.finish_event('zift', event_id, null, 'unmatched', 'no account is named in userDefinedField1');
  end if;
  -- A sale Wingtel sent (userDefinedField2 = the charge): the charge records its outcome, once,
  -- whether this notification or the payment worker's answer comes first.
  if kind = 'sale' then
    charge := private.provider_charge('zift', transaction_id, private.try_uuid(confirmation ->> 'userDefinedField2'));
    if charge.id is not null and charge.organization_id = account.organization_id then
      if charge.status not in ('pending', 'awaiting_confirmation') and not (charge.status = 'succeeded' and left(code, 1) = 'A') then
        return private.finish_event('zift', event_id, account.organization_id, 'ignored', format('charge %s is already %s', charge.id, charge.status));
      end if;
      charge := public.finish_payment_charge(charge.organization_id, charge.id,
        case when left(code, 1) = 'A' then 'succeeded' when code = 'X02' then 'pending' else 'declined' end,
        transaction_id, nullif(code, ''), confirmation ->> 'responseMessage');
      return private.finish_event('zift', event_id, account.organization_id, case when code = 'X02' then 'ignored' else 'applied' end,
        format('charge %s %s', charge.id, charge.status) || coalesce(' (payment ' || charge.payment_id || ')', ''));
    end if;
  end if;
  if code = 'X02' then
    return private.finish_event('zift', event_id, account.organization_id, 'ignored', 'pending at Zift');
  end if;
  if kind in ('sale', 'capture') then
    if left(code, 1) = 'A' then
      payment := public.record_payment(account.organization_id, account.id, amount, 'zift:' || transaction_id, 'card', 'zift', transaction_id);
      return private.finish_event('zift', event_id, account.organization_id, 'applied', 'payment ' || payment.id);
    end if;
    payment := public.record_payment(account.organization_id, account.id, amount, 'zift:' || transaction_id || ':' || code, 'card', 'zift',
      'failed:' || transaction_id, false, coalesce(nullif(code, ''), 'declined'), confirmation ->> 'responseMessage');
    return private.finish_event('zift', event_id, account.organization_id, 'applied', 'failed payment ' || payment.id);
  elsif kind in ('refund', 'void') and left(code, 1) = 'A' then
    select p.* into payment from public.payments p
     where p.organization_id = account.organization_id and p.provider = 'zift' and p.status = 'succeeded' and p.provider_payment_id = original;
    if payment.id is null then
      return private.finish_event('zift', event_id, account.organization_id, 'unmatched', 'no recorded payment for transaction ' || coalesce(original, '?'));
    end if;
    amount := least(amount, payment.amount_cents - payment.refunded_cents);
    if amount <= 0 then
      return private.finish_event('zift', event_id, account.organization_id, 'ignored', 'already refunded');
    end if;
    payment := public.refund_payment(account.organization_id, payment.id, amount, 'Zift ' || kind || ' ' || transaction_id);
    return private.finish_event('zift', event_id, account.organization_id, 'applied', format('refunded %s cents of payment %s', amount, payment.id));
  end if;
  return private.finish_event('zift', event_id, account.organization_id, 'ignored', format('Wingtel does not act on a %s with code %s', kind, code));
end;
$$;
comment on function public.handle_zift_event(jsonb, jsonb, text) is 'Applies one Zift notification once, from the gateway''s confirmation of the transaction (find): approved sales are payments, declines failed attempts, approved refunds and voids refunds. Returns {outcome, event_id, detail}.';

revoke all on function public.handle_zift_event(jsonb, jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_zift_event(jsonb, jsonb, text) to service_role;
