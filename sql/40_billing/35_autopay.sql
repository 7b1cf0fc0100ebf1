-- Autopay: charging an account's saved payment method. The database decides what to charge and
-- when; the payment worker of `wingtel serve` (Sources/WingtelFunctions/Payments) only talks to
-- Stripe and Zift.
--   queue_autopay_charges  each open invoice of an autopay account gets a charge when it is issued,
--                          and again on the policy's retry days after a decline (daily job `autopay`)
--   charge_payment_method  staff charge a saved method now (a phone payment on file)
--   claim_payment_charges  the worker takes due charges under a lease (SKIP LOCKED); charges whose
--                          invoice was settled meanwhile, whose method was removed or whose account
--                          left autopay are canceled first
--   finish_payment_charge  the outcome: succeeded → a payment (record_payment, settling the invoice);
--                          declined → a failed attempt (dunning and churn see it); pending → waits for
--                          the provider's webhook; retry → sent again later with the same key, dead
--                          after max_sends
-- The webhooks settle a charge too (handle_stripe_event, handle_zift_event): whichever of the worker
-- and the webhook comes first records the payment, the other finds it recorded.

-- The caller may manage the account's payment methods: staff (agent and up), or the account's own
-- self-service customer.
create or replace function private.require_account_manager(organization_id uuid, account_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if require_account_manager.account_id = any (private.customer_account_ids())
     and exists (select 1 from public.accounts a where a.organization_id = require_account_manager.organization_id
                 and a.id = require_account_manager.account_id) then
    return;
  end if;
  perform private.require_role(require_account_manager.organization_id, 'agent');
end;
$$;
comment on function private.require_account_manager(uuid, uuid) is 'Guard: the caller is staff of the organization (agent and up), a service, or the account''s own self-service customer.';

-- What card-data scanners look for: a run of 13 to 19 digits (spaces or dashes between them
-- allowed) that passes the Luhn check. Provider tokens that keep a card's shape are made to fail
-- Luhn, so they pass.
create or replace function private.looks_like_card_number(value text)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  run text;
begin
  for run in select regexp_replace(m[1], '[ -]', '', 'g') from regexp_matches(coalesce(value, ''), '([0-9](?:[0-9]|[ -](?=[0-9])){12,})', 'g') as m
  loop
    if length(run) between 13 and 19 and public.luhn_valid(run) then
      return true;
    end if;
  end loop;
  return false;
end;
$$;
comment on function private.looks_like_card_number(text) is 'True when the text holds a run of 13 to 19 digits (spaces or dashes between them allowed) that passes the Luhn check: what a card number looks like.';

create or replace function private.validate_payment_method()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if private.looks_like_card_number(new.token) or private.looks_like_card_number(new.provider_customer_id) then
    raise exception 'that looks like a card number; Wingtel stores only the provider''s token' using errcode = '23514',
      hint = 'Collect the card with Stripe Elements or Zift''s hosted form and save the token it returns (pm_… for Stripe).';
  end if;
  return new;
end;
$$;
comment on function private.validate_payment_method() is 'Trigger on payment_methods: refuses a token (or customer id) that holds a card number, whoever writes it.';
create or replace trigger payment_methods_validate before insert or update of token, provider_customer_id on public.payment_methods
  for each row execute function private.validate_payment_method();

create or replace function public.add_payment_method(
  organization_id uuid,
  account_id uuid,
  provider text,
  token text,
  provider_customer_id text default null,
  brand text default null,
  last4 text default null,
  exp_month integer default null,
  exp_year integer default null,
  make_default boolean default true)
returns public.payment_methods
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := add_payment_method.organization_id;
  method public.payment_methods;
begin
  perform private.require_account_manager(org, add_payment_method.account_id);
  perform private.lock_account(org, add_payment_method.account_id);
  if add_payment_method.provider is null or add_payment_method.provider not in ('stripe', 'zift') then
    raise exception 'unknown payment provider %', coalesce(add_payment_method.provider, 'null') using errcode = '22023',
      hint = 'Saved payment methods are Stripe PaymentMethods (stripe) or Zift stored-card tokens (zift).';
  end if;
  if private.looks_like_card_number(add_payment_method.token) then
    raise exception 'that looks like a card number; Wingtel stores only the provider''s token' using errcode = '22023',
      hint = 'Collect the card with Stripe Elements or Zift''s hosted form and pass the token it returns (pm_… for Stripe).';
  end if;
  if add_payment_method.provider = 'stripe' and coalesce(add_payment_method.provider_customer_id, '') !~ '^cus_[A-Za-z0-9]+$' then
    raise exception 'a Stripe payment method needs the Stripe customer (cus_…) it is attached to' using errcode = '22023',
      hint = 'Off-session charges name the customer and the payment method.';
  end if;

  select m.* into method from public.payment_methods m
   where m.organization_id = org and m.provider = add_payment_method.provider and m.token = add_payment_method.token;
  if method.id is not null and method.account_id <> add_payment_method.account_id then
    raise exception 'this % token is saved for another account', add_payment_method.provider using errcode = '23505';
  end if;
  if add_payment_method.make_default then
    update public.payment_methods m set is_default = false
     where m.organization_id = org and m.account_id = add_payment_method.account_id and m.is_default
       and m.id is distinct from method.id;
  end if;
  if method.id is null then
    insert into public.payment_methods (organization_id, account_id, provider, token, provider_customer_id, brand, last4, exp_month,
                                        exp_year, is_default)
    values (org, add_payment_method.account_id, add_payment_method.provider, add_payment_method.token,
            add_payment_method.provider_customer_id, add_payment_method.brand, add_payment_method.last4, add_payment_method.exp_month,
            add_payment_method.exp_year, add_payment_method.make_default)
    returning * into method;
  else
    -- The same token again (a repeated call, or a method saved again after removal): one row.
    update public.payment_methods m
       set status = 'active', removed_at = null, is_default = m.is_default or add_payment_method.make_default,
           provider_customer_id = coalesce(add_payment_method.provider_customer_id, m.provider_customer_id),
           brand = coalesce(add_payment_method.brand, m.brand), last4 = coalesce(add_payment_method.last4, m.last4),
           exp_month = coalesce(add_payment_method.exp_month, m.exp_month), exp_year = coalesce(add_payment_method.exp_year, m.exp_year)
     where m.organization_id = org and m.id = method.id
    returning * into method;
  end if;
  return method;
end;
$$;
comment on function public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean) is 'Saves a payment method token (Stripe pm_… with its customer, or a Zift token) for an account, by default as the method autopay charges; the same token again is the same method. Refuses anything that holds a card number (a Luhn-valid run of 13 to 19 digits). Staff (agent and up) or the account''s customer.';

create or replace function public.remove_payment_method(organization_id uuid, payment_method_id uuid)
returns public.payment_methods
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := remove_payment_method.organization_id;
  method public.payment_methods;
begin
  select m.* into method from public.payment_methods m where m.organization_id = org and m.id = remove_payment_method.payment_method_id;
  if method.id is null then
    raise exception 'there is no payment method % in this organization', remove_payment_method.payment_method_id using errcode = 'P0002';
  end if;
  perform private.require_account_manager(org, method.account_id);
  perform private.lock_account(org, method.account_id);
  if method.status = 'removed' then
    return method;
  end if;
  -- Charges not yet sent are canceled; one already at the provider finishes there (its webhook settles it).
  update public.payment_charges c
     set status = 'canceled', last_error = 'the payment method was removed', finished_at = now(), lease_until = null
   where c.organization_id = org and c.payment_method_id = method.id and c.status = 'pending' and c.sends = 0
     and (c.lease_until is null or c.lease_until < now());
  update public.payment_methods m set status = 'removed', removed_at = now(), is_default = false
   where m.organization_id = org and m.id = method.id
  returning * into method;
  -- Without a default method there is nothing for autopay to charge: it goes off (visibly) rather
  -- than staying on and silently charging nothing.
  update public.accounts a set autopay = false
   where a.organization_id = org and a.id = method.account_id and a.autopay
     and not exists (select 1 from public.payment_methods m
                     where m.organization_id = org and m.account_id = a.id and m.is_default and m.status = 'active');
  return method;
end;
$$;
comment on function public.remove_payment_method(uuid, uuid) is 'Removes a saved payment method (kept for history as removed); charges of it not yet sent are canceled, and autopay is turned off when no default method is left. Staff (agent and up) or the account''s customer.';

create or replace function public.set_autopay(organization_id uuid, account_id uuid, enabled boolean)
returns public.accounts
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := set_autopay.organization_id;
  payer public.accounts;
begin
  perform private.require_account_manager(org, set_autopay.account_id);
  payer := private.lock_account(org, set_autopay.account_id);
  if set_autopay.enabled is null then
    raise exception 'say whether autopay is on (true) or off (false)' using errcode = '22023';
  end if;
  if set_autopay.enabled and not exists (
       select 1 from public.payment_methods m
       where m.organization_id = org and m.account_id = payer.id and m.is_default and m.status = 'active') then
    raise exception 'account % has no default payment method to charge', payer.id using errcode = 'P0001',
      hint = 'Save one first with add_payment_method.';
  end if;
  if payer.autopay is distinct from set_autopay.enabled then
    update public.accounts a set autopay = set_autopay.enabled where a.organization_id = org and a.id = payer.id returning * into payer;
  end if;
  return payer;
end;
$$;
comment on function public.set_autopay(uuid, uuid, boolean) is 'Turns autopay on (needs a default payment method) or off for an account. Staff (agent and up) or the account''s customer.';

create or replace function public.queue_autopay_charges(organization_id uuid, as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := queue_autopay_charges.organization_id;
  queued integer;
  today date;
  zone text;
begin
  perform private.require_role(org, 'operator');
  select o.time_zone, (queue_autopay_charges.as_of at time zone o.time_zone)::date into zone, today
  from public.organizations o where o.id = org;
  if today is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  -- Each issued, unsettled invoice of an autopay account with a default method, with no charge in
  -- flight: the first attempt at once; after the n-th decline (or dead charge) the next one
  -- autopay_retry_days[n] days later, while n <= cardinality(autopay_retry_days). An attempt
  -- canceled before it was sent (the card was replaced) is simply made again. A succeeded
  -- autopay charge is never repeated by itself (a refund reopens the invoice: staff decide).
  with due as (
    select i.organization_id, i.account_id, i.id as invoice_id, m.id as method_id, m.provider, i.currency,
           i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding,
           coalesce(l.attempt, 0) + 1 as attempt
    from public.invoices i
    join public.accounts a on a.organization_id = i.organization_id and a.id = i.account_id and a.autopay
    join public.payment_methods m on m.organization_id = i.organization_id and m.account_id = i.account_id and m.is_default
                                 and m.status = 'active'
    left join public.billing_policies p on p.organization_id = i.organization_id
    left join lateral (
      select c.attempt, c.status, c.finished_at,
             (select count(*) from public.payment_charges f
              where f.organization_id = i.organization_id and f.invoice_id = i.id and f.origin = 'autopay'
                and f.status in ('declined', 'dead'))::integer as failures
      from public.payment_charges c
      where c.organization_id = i.organization_id and c.invoice_id = i.id and c.origin = 'autopay'
      order by c.attempt desc
      limit 1
    ) l on true
    where i.organization_id = org and i.status in ('open', 'past_due') and i.issued_on <= today
      and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
      and not exists (select 1 from public.payment_charges b
                      where b.organization_id = i.organization_id and b.invoice_id = i.id and b.status in ('pending', 'awaiting_confirmation'))
      and (l.attempt is null
           or l.status = 'canceled'
           or (l.status in ('declined', 'dead')
               and l.failures <= cardinality(coalesce(p.autopay_retry_days, '{3,5,7}'::integer[]))
               and (l.finished_at at time zone zone)::date + (coalesce(p.autopay_retry_days, '{3,5,7}'::integer[]))[l.failures] <= today))
  )
  insert into public.payment_charges (organization_id, account_id, invoice_id, payment_method_id, provider, origin, amount_cents, currency,
                                      attempt, idempotency_key)
  select d.organization_id, d.account_id, d.invoice_id, d.method_id, d.provider, 'autopay', d.outstanding, d.currency, d.attempt,
         format('autopay:%s:%s', d.invoice_id, d.attempt)
  from due d
  on conflict do nothing;
  get diagnostics queued = row_count;
  return queued;
end;
$$;
comment on function public.queue_autopay_charges(uuid, timestamptz) is 'Queues an autopay charge for every issued, unsettled invoice of the organization''s autopay accounts: the first attempt at once, retries on the policy''s autopay_retry_days after a decline. Re-running queues nothing new. Returns how many were queued (operators; the scheduler''s daily autopay job).';

create or replace function public.charge_payment_method(
  organization_id uuid,
  account_id uuid,
  amount_cents bigint default null,
  invoice_id uuid default null,
  payment_method_id uuid default null,
  idempotency_key text default null)
returns public.payment_charges
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := charge_payment_method.organization_id;
  payer public.accounts;
  method public.payment_methods;
  charge public.payment_charges;
  owed bigint;
  key text := coalesce(nullif(btrim(charge_payment_method.idempotency_key), ''), 'staff:' || gen_random_uuid());
begin
  perform private.require_role(org, 'agent');
  payer := private.lock_account(org, charge_payment_method.account_id);
  select c.* into charge from public.payment_charges c where c.organization_id = org and c.idempotency_key = key;
  if charge.id is not null then
    if charge.account_id <> payer.id then
      raise exception 'idempotency key % was already used for another account''s charge', key using errcode = '22023';
    end if;
    return charge;
  end if;
  select m.* into method from public.payment_methods m
   where m.organization_id = org and m.account_id = payer.id and m.status = 'active'
     and (m.id = charge_payment_method.payment_method_id or (charge_payment_method.payment_method_id is null and m.is_default));
  if method.id is null then
    raise exception 'account % has no % payment method to charge', payer.id,
      case when charge_payment_method.payment_method_id is null then 'default' else 'such active' end using errcode = 'P0001',
      hint = 'Save one with add_payment_method.';
  end if;
  if charge_payment_method.invoice_id is not null then
    select i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents into owed
    from public.invoices i
    where i.organization_id = org and i.id = charge_payment_method.invoice_id and i.account_id = payer.id and i.status in ('open', 'past_due');
    if owed is null or owed <= 0 then
      raise exception 'invoice % of this account has nothing left to pay', charge_payment_method.invoice_id using errcode = 'P0001';
    end if;
  else
    select coalesce(sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents), 0) into owed
    from public.invoices i where i.organization_id = org and i.account_id = payer.id and i.status in ('open', 'past_due');
  end if;
  if coalesce(charge_payment_method.amount_cents, owed) <= 0 then
    raise exception 'a charge must be a positive number of cents (the account owes %)', owed using errcode = '22023',
      hint = 'Give amount_cents to charge an account that owes nothing (the payment goes to its wallet).';
  end if;
  insert into public.payment_charges (organization_id, account_id, invoice_id, payment_method_id, provider, origin, amount_cents, currency,
                                      idempotency_key)
  select org, payer.id, charge_payment_method.invoice_id, method.id, method.provider, 'staff',
         coalesce(charge_payment_method.amount_cents, owed), o.currency, key
  from public.organizations o where o.id = org
  returning * into charge;
  return charge;
end;
$$;
comment on function public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text) is 'Queues a charge of a saved payment method (the default unless one is named): the invoice''s outstanding amount, everything the account owes, or amount_cents. The payment worker sends it; once per idempotency key (agents and up).';

create or replace function private.notify_payment_charges()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('wingtel_payment_charges', '');
  return null;
end;
$$;
comment on function private.notify_payment_charges() is 'Statement trigger on payment_charges: NOTIFY wingtel_payment_charges so the payment worker wakes for a queued charge.';
create or replace trigger payment_charges_notify after insert on public.payment_charges
  for each statement execute function private.notify_payment_charges();
create or replace trigger payment_charges_touch before update on public.payment_charges
  for each row execute function private.touch_updated_at();
create or replace trigger payment_methods_touch before update on public.payment_methods
  for each row execute function private.touch_updated_at();

create or replace function public.claim_payment_charges(
  worker text, max_count integer default 16, lease interval default '60 seconds', providers text[] default '{stripe,zift}')
returns table (
  organization_id uuid,
  id uuid,
  account_id uuid,
  invoice_id uuid,
  provider text,
  token text,
  provider_customer_id text,
  amount_cents bigint,
  currency char(3),
  idempotency_key text,
  sends integer,
  description text,
  provider_payment_id text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Not worth sending any more: the invoice was settled another way, the method was removed, or
  -- the account left autopay. A charge already sent once keeps its amount (the provider bound it
  -- to the idempotency key); one never sent is lowered to what is still owed.
  -- (Only charges never sent: one sent before may have reached the provider, and is sent again
  -- with its key to learn the answer.)
  update public.payment_charges c
     set status = 'canceled', finished_at = now(), lease_until = null,
         last_error = case when m.status <> 'active' then 'the payment method was removed'
                           when c.origin = 'autopay' and not a.autopay then 'autopay was turned off'
                           else 'the invoice was settled before the charge was sent' end
    from public.payment_methods m, public.accounts a
   where c.status = 'pending' and c.sends = 0 and c.next_attempt_at <= now() and (c.lease_until is null or c.lease_until < now())
     and m.organization_id = c.organization_id and m.id = c.payment_method_id
     and a.organization_id = c.organization_id and a.id = c.account_id
     and (m.status <> 'active' or (c.origin = 'autopay' and not a.autopay)
          or exists (select 1 from public.invoices i
                     where i.organization_id = c.organization_id and i.id = c.invoice_id
                       and (i.status not in ('open', 'past_due')
                            or i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents <= 0)));
  update public.payment_charges c
     set amount_cents = i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents
    from public.invoices i
   where c.status = 'pending' and c.sends = 0 and c.next_attempt_at <= now() and (c.lease_until is null or c.lease_until < now())
     and i.organization_id = c.organization_id and i.id = c.invoice_id
     and c.amount_cents > i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents;
  -- Due too: charges the provider is still working on whose next check has come (the webhook
  -- that settles them may never arrive); the worker asks the provider for their state.
  return query
  with ready as (
    select c.organization_id, c.id from public.payment_charges c
    where c.status in ('pending', 'awaiting_confirmation') and c.next_attempt_at <= now()
      and (c.lease_until is null or c.lease_until < now())
      and c.provider = any (claim_payment_charges.providers)
    order by c.next_attempt_at
    limit greatest(claim_payment_charges.max_count, 0)
    for update skip locked
  ), claimed as (
    update public.payment_charges c
       set locked_by = claim_payment_charges.worker, lease_until = now() + claim_payment_charges.lease, sends = c.sends + 1
      from ready r
     where c.organization_id = r.organization_id and c.id = r.id
    returning c.*
  )
  select c.organization_id, c.id, c.account_id, c.invoice_id, c.provider, m.token, m.provider_customer_id, c.amount_cents, c.currency,
         c.idempotency_key, c.sends,
         coalesce(o.name || ' invoice ' || i.display_number, o.name || ' payment'),
         case when c.status = 'awaiting_confirmation' then c.provider_payment_id end
  from claimed c
  join public.payment_methods m on m.organization_id = c.organization_id and m.id = c.payment_method_id
  join public.organizations o on o.id = c.organization_id
  left join public.invoices i on i.organization_id = c.organization_id and i.id = c.invoice_id;
end;
$$;
comment on function public.claim_payment_charges(text, integer, interval, text[]) is 'Takes up to max_count due charges of the given providers for one payment worker under a lease (SKIP LOCKED), with the token and customer to charge; cancels those no longer worth sending first. A charge whose worker died is claimed again when its lease runs out (same idempotency key). A charge awaiting confirmation whose next check has come is returned with its provider_payment_id: the worker asks the provider for its state instead of charging.';

-- A charge the provider is still working on: check again in 30 minutes, doubling up to a day;
-- after 14 days without an answer it is dead for staff to look at (the invoice stays owed).
create or replace function private.await_confirmation(charge public.payment_charges, provider_payment_id text, error text)
returns public.payment_charges
language plpgsql
set search_path = ''
as $$
declare
  result public.payment_charges;
begin
  if charge.created_at < now() - interval '14 days' then
    update public.payment_charges c
       set status = 'dead', lease_until = null, finished_at = now(),
           provider_payment_id = coalesce(await_confirmation.provider_payment_id, c.provider_payment_id),
           last_error = 'the provider has not confirmed this payment in 14 days: look it up in its dashboard'
     where c.organization_id = charge.organization_id and c.id = charge.id returning * into result;
  else
    update public.payment_charges c
       set status = 'awaiting_confirmation', lease_until = null,
           provider_payment_id = coalesce(await_confirmation.provider_payment_id, c.provider_payment_id),
           last_error = coalesce(await_confirmation.error, c.last_error),
           next_attempt_at = now() + least(interval '30 minutes' * power(2, greatest(charge.sends - 1, 0)), interval '24 hours')
     where c.organization_id = charge.organization_id and c.id = charge.id returning * into result;
  end if;
  return result;
end;
$$;
comment on function private.await_confirmation(public.payment_charges, text, text) is 'Keeps a charge awaiting the provider''s confirmation, to be checked again in 30 minutes doubling up to a day; dead after 14 days without one.';

create or replace function public.finish_payment_charge(
  organization_id uuid,
  charge_id uuid,
  outcome text,
  provider_payment_id text default null,
  failure_code text default null,
  failure_message text default null,
  retry_after interval default null)
returns public.payment_charges
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := finish_payment_charge.organization_id;
  charge public.payment_charges;
  payment public.payments;
begin
  perform private.require_role(org, 'operator');
  select c.* into charge from public.payment_charges c where c.organization_id = org and c.id = finish_payment_charge.charge_id for update;
  if charge.id is null then
    raise exception 'there is no payment charge % in this organization', finish_payment_charge.charge_id using errcode = 'P0002';
  end if;
  if finish_payment_charge.outcome is null or finish_payment_charge.outcome not in ('succeeded', 'declined', 'pending', 'retry') then
    raise exception 'unknown charge outcome %', coalesce(finish_payment_charge.outcome, 'null') using errcode = '22023',
      hint = 'One of succeeded, declined, pending (the provider finishes later), retry (not charged; send again).';
  end if;
  -- Already settled (by the webhook, or an earlier answer): the same charge is not settled twice.
  if charge.status not in ('pending', 'awaiting_confirmation') then
    return charge;
  end if;
  if finish_payment_charge.outcome in ('succeeded', 'pending') and nullif(coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id), '') is null then
    raise exception 'a charge the provider took needs the provider''s payment id' using errcode = '22023';
  end if;

  case finish_payment_charge.outcome
    when 'succeeded' then
      payment := public.record_payment(org, charge.account_id, charge.amount_cents, charge.idempotency_key, 'card', charge.provider,
        coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id), true, null, null, now(), charge.invoice_id);
      update public.payment_charges c
         set status = 'succeeded', payment_id = payment.id, provider_payment_id = payment.provider_payment_id,
             lease_until = null, finished_at = now(), last_error = null
       where c.organization_id = org and c.id = charge.id returning * into charge;
    when 'declined' then
      payment := public.record_payment(org, charge.account_id, charge.amount_cents, charge.idempotency_key || ':declined', 'card',
        charge.provider, 'failed:' || coalesce(finish_payment_charge.provider_payment_id, charge.provider_payment_id, charge.idempotency_key), false,
        coalesce(nullif(finish_payment_charge.failure_code, ''), 'declined'), finish_payment_charge.failure_message, now());
      update public.payment_charges c
         set status = 'declined', payment_id = payment.id,
             provider_payment_id = coalesce(finish_payment_charge.provider_payment_id, c.provider_payment_id),
             failure_code = payment.failure_code, failure_message = payment.failure_message, lease_until = null, finished_at = now()
       where c.organization_id = org and c.id = charge.id returning * into charge;
    when 'pending' then
      charge := private.await_confirmation(charge, finish_payment_charge.provider_payment_id, null);
    else
      if charge.status = 'awaiting_confirmation' then
        -- The provider has the payment; not knowing its state now is no reason to give up on it.
        charge := private.await_confirmation(charge, null,
          coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'the provider could not be asked'));
      elsif charge.sends >= charge.max_sends then
        update public.payment_charges c
           set status = 'dead', lease_until = null, finished_at = now(),
               last_error = coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'not charged')
         where c.organization_id = org and c.id = charge.id returning * into charge;
      else
        -- Backoff 2^sends seconds (at most an hour) with ±50 % jitter, or the provider's Retry-After if longer.
        update public.payment_charges c
           set lease_until = null,
               last_error = coalesce(finish_payment_charge.failure_message, finish_payment_charge.failure_code, 'not charged'),
               next_attempt_at = now() + greatest(coalesce(finish_payment_charge.retry_after, interval '0'),
                                                  least(power(2, charge.sends), 3600) * (0.5 + random()) * interval '1 second')
         where c.organization_id = org and c.id = charge.id returning * into charge;
      end if;
  end case;
  return charge;
end;
$$;
comment on function public.finish_payment_charge(uuid, uuid, text, text, text, text, interval) is 'The outcome of sending a charge: succeeded (a payment, settling its invoice), declined (a failed attempt for dunning; the next attempt follows the retry days), pending (the provider finishes it: its webhook settles it, or the worker asks again later, for up to 14 days), retry (not charged: sent again with the same key after a backoff or Retry-After; dead after max_sends; for a charge awaiting confirmation, asked again later). Settling a charge twice changes nothing (services and operators).';

-- The charge a provider's payment belongs to: by the provider's payment id, else by the charge id
-- Wingtel sent with it (Stripe metadata.wingtel_charge_id, Zift userDefinedField2).
create or replace function private.provider_charge(provider text, provider_payment_id text, charge_id uuid)
returns public.payment_charges
language sql
stable
security definer
set search_path = ''
as $$
  select c.* from public.payment_charges c
  where (c.provider = provider_charge.provider and c.provider_payment_id = provider_charge.provider_payment_id)
     or (c.id = provider_charge.charge_id and c.provider = provider_charge.provider)
  order by (c.provider_payment_id = provider_charge.provider_payment_id) desc nulls last
  limit 1
$$;
comment on function private.provider_charge(text, text, uuid) is 'The payment charge a provider''s payment came from (by its payment id, else the charge id sent with it); null fields when it is not Wingtel''s.';

revoke all on function private.looks_like_card_number(text), private.validate_payment_method(), private.require_account_manager(uuid, uuid), public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean),
  public.remove_payment_method(uuid, uuid), public.set_autopay(uuid, uuid, boolean), public.queue_autopay_charges(uuid, timestamptz),
  public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text), private.notify_payment_charges(),
  public.claim_payment_charges(text, integer, interval, text[]), public.finish_payment_charge(uuid, uuid, text, text, text, text, interval),
  private.provider_charge(text, text, uuid), private.await_confirmation(public.payment_charges, text, text) from public, anon, authenticated;
grant execute on function public.add_payment_method(uuid, uuid, text, text, text, text, text, integer, integer, boolean),
  public.remove_payment_method(uuid, uuid), public.set_autopay(uuid, uuid, boolean), public.queue_autopay_charges(uuid, timestamptz),
  public.charge_payment_method(uuid, uuid, bigint, uuid, uuid, text) to authenticated, service_role;
grant execute on function public.claim_payment_charges(text, integer, interval, text[]),
  public.finish_payment_charge(uuid, uuid, text, text, text, text, interval) to service_role;

-- Who sees them: staff read their organization's methods and charges, customers their own account's.
revoke all on public.payment_methods, public.payment_charges from anon, authenticated;
grant select on public.payment_methods, public.payment_charges to authenticated;
grant all on public.payment_methods, public.payment_charges to service_role;
grant update (autopay_retry_days) on public.billing_policies to authenticated;

drop policy if exists "Members and the customer can view payment methods" on public.payment_methods;
create policy "Members and the customer can view payment methods" on public.payment_methods for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Members and the customer can view payment charges" on public.payment_charges;
create policy "Members and the customer can view payment charges" on public.payment_charges for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

select audit.enable('public.payment_methods', 'billing');
select audit.enable('public.payment_charges', 'billing');
