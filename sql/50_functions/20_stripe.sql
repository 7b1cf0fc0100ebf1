-- Stripe events (POST /functions/v1/stripe-webhook), after the server checked Stripe-Signature.
-- Stripe delivers at least once and in any order, so each event is recorded once and acts by
-- comparing state, not by trusting order: a refund applies the difference between the charge's
-- amount_refunded and what Wingtel has refunded so far; a payment is one payment whether
-- payment_intent.succeeded or invoice.paid tells it first.
--
-- Which account: metadata.wingtel_account_id (with wingtel_organization_id) on the object —
-- what Wingtel puts on the Stripe objects it creates — else the account whose
-- stripe_customer_id is the object's customer.

create or replace function private.stripe_account(object jsonb)
returns public.accounts
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  meta jsonb := case when jsonb_typeof(object -> 'metadata') = 'object' then object -> 'metadata' else '{}' end;
  meta_account uuid := private.try_uuid(meta ->> 'wingtel_account_id');
  meta_organization uuid := private.try_uuid(meta ->> 'wingtel_organization_id');
  customer text := case when object ->> 'object' = 'customer' then object ->> 'id'
                        when jsonb_typeof(object -> 'customer') = 'string' then object ->> 'customer'
                        else object -> 'customer' ->> 'id' end;
  found_account public.accounts;
begin
  if meta_account is not null then
    select a.* into found_account from public.accounts a
     where a.id = meta_account and (meta_organization is null or a.organization_id = meta_organization);
  end if;
  if found_account.id is null and customer is not null then
    select a.* into found_account from public.accounts a where a.stripe_customer_id = customer;
  end if;
  return found_account;
end;
$$;
comment on function private.stripe_account(jsonb) is 'The account a Stripe object belongs to: metadata.wingtel_account_id first, then the customer id; null fields when none.';

create or replace function public.handle_stripe_event(event jsonb, request_id text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  event_id text := event ->> 'id';
  event_type text := event ->> 'type';
  object jsonb := event -> 'data' -> 'object';
  account public.accounts;
  payment public.payments;
  charge public.payment_charges;
  amount bigint;
  intent text;
  refunded bigint;
  failure_code text;
  failure_message text;
  occurred timestamptz;
begin
  if jsonb_typeof(event) is distinct from 'object' or event_id is null or event_type is null
     or jsonb_typeof(object) is distinct from 'object' then
    raise exception 'not a Stripe event: id, type and data.object are required' using errcode = '22023';
  end if;
  if not private.receive_event('stripe', event_id, event_type, event, request_id) then
    return jsonb_build_object('outcome', 'duplicate', 'event_id', event_id);
  end if;
  if event_type not in ('payment_intent.succeeded', 'payment_intent.payment_failed', 'invoice.paid', 'invoice.payment_succeeded',
                        'invoice.payment_failed', 'charge.refunded', 'charge.dispute.created', 'customer.created', 'customer.updated',
                        'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted') then
    return private.finish_event('stripe', event_id, null, 'ignored', 'Wingtel does not act on ' || event_type);
  end if;
  account := private.stripe_account(object);
  if account.id is null then
    return private.finish_event('stripe', event_id, null, 'unmatched', 'no account has this Stripe customer or metadata');
  end if;
  occurred := coalesce(to_timestamp((event ->> 'created')::double precision), now());

  case
    when event_type in ('payment_intent.succeeded', 'invoice.paid', 'invoice.payment_succeeded') then
      if event_type = 'payment_intent.succeeded' then
        amount := (object ->> 'amount_received')::bigint;
        intent := object ->> 'id';
      else
        amount := (object ->> 'amount_paid')::bigint;
        intent := coalesce(object ->> 'payment_intent', object ->> 'charge', object ->> 'id');
      end if;
      if coalesce(amount, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'nothing was paid');
      end if;
      -- A charge Wingtel sent (autopay, or staff charging a saved card): the charge records it, once,
      -- whether this event or the payment worker's answer comes first.
      charge := private.provider_charge('stripe', intent, private.try_uuid(object -> 'metadata' ->> 'wingtel_charge_id'));
      if charge.id is not null and charge.organization_id = account.organization_id and charge.status in ('pending', 'awaiting_confirmation', 'succeeded') then
        charge := public.finish_payment_charge(charge.organization_id, charge.id, 'succeeded', intent);
        return private.finish_event('stripe', event_id, account.organization_id, 'applied',
          format('payment %s (charge %s)', charge.payment_id, charge.id));
      end if;
      -- One payment per PaymentIntent, whichever event tells it first.
      payment := public.record_payment(account.organization_id, account.id, amount, 'stripe:' || intent, 'card', 'stripe', intent,
        true, null, null, occurred, private.try_uuid(object -> 'metadata' ->> 'wingtel_invoice_id'));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'payment ' || payment.id);

    when event_type in ('payment_intent.payment_failed', 'invoice.payment_failed') then
      if event_type = 'payment_intent.payment_failed' then
        amount := (object ->> 'amount')::bigint;
        failure_code := coalesce(object -> 'last_payment_error' ->> 'decline_code', object -> 'last_payment_error' ->> 'code');
        failure_message := object -> 'last_payment_error' ->> 'message';
      else
        amount := (object ->> 'amount_due')::bigint;
      end if;
      if coalesce(amount, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'no amount was due');
      end if;
      -- A decline of a charge Wingtel sent is that charge's outcome, recorded once.
      charge := private.provider_charge('stripe',
        case when event_type = 'payment_intent.payment_failed' then object ->> 'id' else object ->> 'payment_intent' end,
        private.try_uuid(object -> 'metadata' ->> 'wingtel_charge_id'));
      if charge.id is not null and charge.organization_id = account.organization_id then
        if charge.status not in ('pending', 'awaiting_confirmation') then
          return private.finish_event('stripe', event_id, account.organization_id, 'ignored',
            format('charge %s is already %s', charge.id, charge.status));
        end if;
        charge := public.finish_payment_charge(charge.organization_id, charge.id, 'declined',
          case when event_type = 'payment_intent.payment_failed' then object ->> 'id' else object ->> 'payment_intent' end,
          coalesce(failure_code, 'payment_failed'), failure_message);
        return private.finish_event('stripe', event_id, account.organization_id, 'applied',
          format('charge %s declined (failed payment %s)', charge.id, charge.payment_id));
      end if;
      -- Each failed attempt is kept (its own event id), the success that may follow is a payment of its own.
      payment := public.record_payment(account.organization_id, account.id, amount, 'stripe:' || event_id, 'card', 'stripe',
        'failed:' || event_id, false, coalesce(failure_code, 'payment_failed'), failure_message, occurred);
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'failed payment ' || payment.id);

    when event_type = 'charge.refunded' then
      select p.* into payment from public.payments p
       where p.organization_id = account.organization_id and p.provider = 'stripe' and p.status = 'succeeded'
         and p.provider_payment_id in (object ->> 'payment_intent', object ->> 'id');
      if payment.id is null then
        return private.finish_event('stripe', event_id, account.organization_id, 'unmatched', 'no recorded payment for this charge');
      end if;
      -- amount_refunded is the charge's total so far: apply only what is new (order-proof).
      refunded := least((object ->> 'amount_refunded')::bigint, payment.amount_cents) - payment.refunded_cents;
      if coalesce(refunded, 0) <= 0 then
        return private.finish_event('stripe', event_id, account.organization_id, 'ignored', 'refund already recorded');
      end if;
      payment := public.refund_payment(account.organization_id, payment.id, refunded, 'Stripe refund of charge ' || (object ->> 'id'));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', format('refunded %s cents of payment %s', refunded, payment.id));

    when event_type = 'charge.dispute.created' then
      insert into public.notes (organization_id, account_id, body)
      values (account.organization_id, account.id,
              format('Stripe dispute %s opened on charge %s: %s cents, reason %s. Answer it in the Stripe dashboard before its due date.',
                     object ->> 'id', object ->> 'charge', object ->> 'amount', coalesce(object ->> 'reason', 'not given')));
      return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'dispute noted on the account');

    else
      -- Customer and subscription events: remember which Stripe customer pays for the account.
      if event_type = 'customer.subscription.deleted' then
        insert into public.notes (organization_id, account_id, body)
        values (account.organization_id, account.id, format('Stripe subscription %s was cancelled.', object ->> 'id'));
      end if;
      if account.stripe_customer_id is distinct from coalesce(
           case when object ->> 'object' = 'customer' then object ->> 'id' else object ->> 'customer' end, account.stripe_customer_id) then
        update public.accounts a
           set stripe_customer_id = case when object ->> 'object' = 'customer' then object ->> 'id' else object ->> 'customer' end
         where a.organization_id = account.organization_id and a.id = account.id;
        return private.finish_event('stripe', event_id, account.organization_id, 'applied', 'Stripe customer linked to the account');
      end if;
      return private.finish_event('stripe', event_id, account.organization_id,
        case when event_type = 'customer.subscription.deleted' then 'applied' else 'ignored' end, null);
  end case;
end;
$$;
comment on function public.handle_stripe_event(jsonb, text) is 'Applies one verified Stripe event once: payments (payment_intent.succeeded, invoice.paid), failed attempts, refunds (by state), disputes (a note), customer links. Returns {outcome: applied|ignored|unmatched|duplicate, event_id, detail}.';

revoke all on function private.stripe_account(jsonb), public.handle_stripe_event(jsonb, text) from public, anon, authenticated;
grant execute on function public.handle_stripe_event(jsonb, text) to service_role;
