-- Autopay: saved payment methods (tokens only), the autopay switch, charges queued for issued
-- invoices with retries on the policy's days after a decline, the worker's claim and outcomes,
-- and who may do what. Organization B's seed invoice is past due with 3538 cents owed
-- (6838 - 3000 paid - 300 credited); its account has a saved Zift card (9a000000-…0b).
begin;
select no_plan();

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;

-- Payment methods: tokens only, one row per token, the default is what autopay charges.
select throws_ok($$ select public.add_payment_method('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'zift',
                                                     '4242 4242 4242 4242') $$,
  '22023', 'that looks like a card number; Wingtel stores only the provider''s token', 'a card number is refused before anything is written');
select throws_ok($$ select public.add_payment_method('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'paypal', 'tok_1') $$,
  '22023', 'unknown payment provider paypal', 'an unknown provider is refused');
select throws_ok($$ select public.add_payment_method('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 'stripe', 'pm_noCustomer') $$,
  '22023', 'a Stripe payment method needs the Stripe customer (cus_…) it is attached to', 'a Stripe method needs its customer');
select throws_ok($$ insert into public.payment_methods (organization_id, account_id, provider, token)
                    values ('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'zift', 'x4111111111111111') $$,
  '23514', null, 'the table itself refuses a card number, whoever writes it');
select is((select count(*) from public.payment_methods
            where organization_id in ('10000000-0000-4000-8000-00000000000a', '10000000-0000-4000-8000-00000000000b')),
  2::bigint, 'nothing was written by the refused calls');
select is(array[private.looks_like_card_number('tok_4111-1111-1111-1111'), private.looks_like_card_number('4000056655665556'),
                private.looks_like_card_number('4111111111111112'), private.looks_like_card_number('pm_1NXq2bK8h4242424242424242'),
                private.looks_like_card_number('zift-7730000000000012-tok')],
  array[true, true, false, true, false],
  'card numbers are Luhn-valid runs of 13 to 19 digits; format-preserving tokens that fail Luhn are not');

select is((public.add_payment_method('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'zift', 'zift-tok-seed-b')).id,
  '9a000000-0000-4000-8000-00000000000b'::uuid, 'the same token again is the same method');
select throws_ok($$ select public.add_payment_method('10000000-0000-4000-8000-00000000000b', 'ac100000-0000-4000-8000-00000000000b', 'zift', 'zift-tok-seed-b') $$,
  '23505', 'this zift token is saved for another account', 'a token saved for one account cannot be saved for another');

-- The autopay switch needs a default method.
insert into public.accounts (organization_id, id, name, city, state, postal_code, billing_day)
values ('10000000-0000-4000-8000-00000000000b', 'ac900000-0000-4000-8000-00000000000b', 'No Card Yet', 'Chicago', 'IL', '60601', 1);
select throws_ok($$ select public.set_autopay('10000000-0000-4000-8000-00000000000b', 'ac900000-0000-4000-8000-00000000000b', true) $$,
  'P0001', 'account ac900000-0000-4000-8000-00000000000b has no default payment method to charge', 'autopay without a card is refused');

-- Who may: the account's customer and agents; a viewer and another customer may not.
select pg_temp.act_as('b0000000-0000-4000-8000-000000000006');
select throws_ok($$ select public.set_autopay('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', true) $$,
  '42501', null, 'a viewer cannot turn autopay on');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-00000000000a');
select throws_ok($$ select public.set_autopay('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', true) $$,
  '42501', null, 'another organization''s customer cannot either');
select is((select count(*) from public.payment_methods), 1::bigint, 'a customer sees only their own account''s payment methods');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-00000000000b');
select is((public.set_autopay('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', true)).autopay, true,
  'the account''s own customer turns autopay on');
select throws_ok($$ select public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b') $$,
  '42501', null, 'but cannot queue charges');
reset role;

-- Queueing: the past-due invoice gets one charge of what is owed; a re-run queues nothing.
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b'), 1, 'the open invoice of the autopay account is queued');
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b'), 0, 'queueing again queues nothing');
select results_eq(
  $$select provider, origin, amount_cents, attempt, status, idempotency_key = 'autopay:' || invoice_id || ':1' from public.payment_charges
    where organization_id = '10000000-0000-4000-8000-00000000000b' and origin = 'autopay'$$,
  $$values ('zift', 'autopay', 3538::bigint, 1, 'pending', true)$$,
  'a Zift charge of the 3538 cents owed, first attempt, keyed by invoice and attempt');
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000a'), 0, 'A has autopay off: nothing queued');

-- The worker claims it with the token; a second claim gets nothing (SKIP LOCKED + lease).
set local role service_role;
select results_eq(
  $$select provider, token, amount_cents, sends, description from public.claim_payment_charges('w1', 10, '60 seconds')$$,
  $$values ('zift', 'zift-tok-seed-b', 3538::bigint, 1, 'Bolt Wireless invoice INV-000001')$$,
  'claimed with the token to charge, sent once');
select is((select count(*) from public.claim_payment_charges('w2', 10, '60 seconds')), 0::bigint, 'a claimed charge is not claimed twice');
select is((select count(*) from public.claim_payment_charges('w3', 10, '60 seconds', '{stripe}')), 0::bigint,
  'a worker claims only the providers it has settings for');

-- Declined: a failed attempt for dunning, the invoice still owed, nothing queued until the retry day.
select results_eq(
  $$select status, failure_code from public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where origin = 'autopay' and organization_id = '10000000-0000-4000-8000-00000000000b'),
      'declined', 'Z-1', 'D05', 'Insufficient funds')$$,
  $$values ('declined', 'D05')$$, 'a decline finishes the charge');
select results_eq(
  $$select status::text, failure_code, provider, provider_payment_id from public.payments where idempotency_key like 'autopay:%'$$,
  $$values ('failed', 'D05', 'zift', 'failed:Z-1')$$, 'and is recorded as a failed payment attempt');
select is((select status::text from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'), 'past_due',
  'the invoice is still owed');
select is((public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where origin = 'autopay' and organization_id = '10000000-0000-4000-8000-00000000000b'),
      'succeeded', 'Z-1')).status, 'declined', 'a late contradicting answer does not settle a finished charge again');
reset role;
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b', now() + interval '2 days'), 0,
  'two days after the decline: no retry yet (the policy says 3)');
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b', now() + interval '3 days'), 1, 'on the third day the retry is queued');
select results_eq(
  $$select attempt, amount_cents, status from public.payment_charges where organization_id = '10000000-0000-4000-8000-00000000000b'
    and origin = 'autopay' order by attempt$$,
  $$values (1, 3538::bigint, 'declined'), (2, 3538::bigint, 'pending')$$, 'attempt 2 of the same invoice');

-- Succeeded: a payment that settles the invoice, a balanced ledger transaction; settling twice changes nothing.
set local role service_role;
select is((select count(*) from public.claim_payment_charges('w1', 10, '0 seconds')), 1::bigint, 'the retry is claimed');
select is((public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where attempt = 2 and organization_id = '10000000-0000-4000-8000-00000000000b'),
      'succeeded', 'Z-2')).status, 'succeeded', 'the retry succeeds');
select is((public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where attempt = 2 and organization_id = '10000000-0000-4000-8000-00000000000b'),
      'succeeded', 'Z-2')).status, 'succeeded', 'the same answer again');
reset role;
select results_eq(
  $$select status::text, amount_cents, provider_payment_id from public.payments where idempotency_key like 'autopay:%:2'$$,
  $$values ('succeeded', 3538::bigint, 'Z-2')$$, 'one payment of what was owed');
select is((select status::text from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'), 'paid', 'the invoice is paid');
select is((select count(*) from (select transaction_id from public.ledger_entries where organization_id = '10000000-0000-4000-8000-00000000000b'
    group by transaction_id having sum(amount_cents) <> 0) t), 0::bigint, 'every ledger transaction balances');
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000b', now() + interval '30 days'), 0, 'a paid invoice is not charged again');

-- Transient failures: sent again after a backoff, dead after max_sends; a dead charge counts as an attempt.
insert into public.account_charges (organization_id, account_id, kind, description, amount_cents, charge_on)
values ('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 'one_off', 'SIM replacement', 1500, date '2026-03-10');
select public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', date '2026-03-01', timestamptz '2026-03-20 12:00:00+00');
select public.set_autopay('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', true);
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000a'), 1, 'A''s March invoice is queued for the Stripe card');
set local role service_role;
select is((select provider_customer_id from public.claim_payment_charges('w1', 10, '0 seconds')), 'cus_seedAcme',
  'a Stripe charge carries the customer');
select is((public.finish_payment_charge('10000000-0000-4000-8000-00000000000a',
      (select id from public.payment_charges where origin = 'autopay' and organization_id = '10000000-0000-4000-8000-00000000000a'),
      'retry', null, 'http_503', 'Stripe answered 503', interval '30 seconds')).next_attempt_at >= now() + interval '30 seconds', true,
  'a 503 is sent again, not before the Retry-After');
update public.payment_charges set sends = max_sends, next_attempt_at = now() where organization_id = '10000000-0000-4000-8000-00000000000a';
select results_eq(
  $$select status, last_error from public.finish_payment_charge('10000000-0000-4000-8000-00000000000a',
      (select id from public.payment_charges where origin = 'autopay' and organization_id = '10000000-0000-4000-8000-00000000000a'),
      'retry', null, 'unreachable', 'Stripe did not answer')$$,
  $$values ('dead', 'Stripe did not answer')$$, 'after max_sends the charge is dead, with its last error');
select is((select count(*) from public.payments where idempotency_key like 'autopay:%' and organization_id = '10000000-0000-4000-8000-00000000000a'),
  0::bigint, 'a dead charge recorded no payment attempt (the card was never asked)');
select throws_ok($$ select public.finish_payment_charge('10000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'succeeded', 'pi_1') $$,
  'P0002', null, 'an unknown charge is refused');
select throws_ok($$ select public.finish_payment_charge('10000000-0000-4000-8000-00000000000a',
      (select id from public.payment_charges where origin = 'autopay' and organization_id = '10000000-0000-4000-8000-00000000000a'), 'maybe') $$,
  '22023', 'unknown charge outcome maybe', 'an unknown outcome is refused');
reset role;
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000a', now() + interval '3 days'), 1,
  'three days after the dead charge, the next attempt is queued');

-- Not worth sending any more: a charge whose invoice was paid meanwhile is canceled at claim time.
select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a',
                             i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents,
                             'paid-by-phone', 'card', 'manual', null, true, null, null, now(), i.id)
from public.invoices i where i.organization_id = '10000000-0000-4000-8000-00000000000a' and i.billing_month = '2026-03-01';
set local role service_role;
select is((select count(*) from public.claim_payment_charges('w1', 10, '60 seconds')), 0::bigint, 'nothing is sent for a paid invoice');
reset role;
select results_eq(
  $$select status, last_error from public.payment_charges where organization_id = '10000000-0000-4000-8000-00000000000a' and attempt = 2$$,
  $$values ('canceled', 'the invoice was settled before the charge was sent')$$, 'the charge is canceled, with the reason');

-- Staff charge a saved card now; the key makes it once.
select is((public.charge_payment_method('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 2500, null, null, 'phone-1')).amount_cents,
  2500::bigint, 'an agent charges 2500 to the card on file');
select is((public.charge_payment_method('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 2500, null, null, 'phone-1')).origin,
  'staff', 'the same key again is the same charge');
select is((select count(*) from public.payment_charges where idempotency_key = 'phone-1'), 1::bigint, 'one charge');
select throws_ok($$ select public.charge_payment_method('10000000-0000-4000-8000-00000000000b', 'ac900000-0000-4000-8000-00000000000b') $$,
  'P0001', null, 'an account without a saved card cannot be charged');

-- Removing the card cancels what was not sent yet.
select is((public.remove_payment_method('10000000-0000-4000-8000-00000000000a', '9a000000-0000-4000-8000-00000000000a')).status, 'removed',
  'the card is removed');
select is((select status from public.payment_charges where idempotency_key = 'phone-1'), 'canceled', 'its unsent charge is canceled');
select is((select autopay from public.accounts where id = 'ac000000-0000-4000-8000-00000000000a'), false,
  'with no default method left, autopay is off');
select is(public.queue_autopay_charges('10000000-0000-4000-8000-00000000000a', now() + interval '30 days'), 0, 'and autopay has nothing to charge');

-- Awaiting the provider: checked again later, never given up for a network failure, dead after 14 days.
select public.add_payment_method('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'zift', 'tok-slow', make_default => false);
select public.charge_payment_method('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 700, null,
  (select id from public.payment_methods where token = 'tok-slow'), 'slow-1');
set local role service_role;
select is((select count(*) from public.claim_payment_charges('w1', 10, '60 seconds') where idempotency_key = 'slow-1'), 1::bigint, 'the slow charge is sent');
select results_eq(
  $$select status, provider_payment_id, next_attempt_at > now() + interval '29 minutes' from public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where idempotency_key = 'slow-1'), 'pending', 'ZP-1')$$,
  $$values ('awaiting_confirmation', 'ZP-1', true)$$, 'pending at the provider: awaiting, next check in half an hour');
update public.payment_charges set next_attempt_at = now(), sends = max_sends where idempotency_key = 'slow-1';
select results_eq(
  $$select provider_payment_id, sends from public.claim_payment_charges('w1', 10, '60 seconds') where idempotency_key = 'slow-1'$$,
  $$values ('ZP-1', 9)$$, 'when the check is due the worker gets the provider''s payment id to look up');
select results_eq(
  $$select status, last_error from public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where idempotency_key = 'slow-1'), 'retry', null, 'unavailable', 'the Zift gateway answered 503')$$,
  $$values ('awaiting_confirmation', 'the Zift gateway answered 503')$$, 'a failed look-up is no reason to give up, even past max_sends');
update public.payment_charges set created_at = now() - interval '15 days' where idempotency_key = 'slow-1';
select results_eq(
  $$select status, finished_at is not null from public.finish_payment_charge('10000000-0000-4000-8000-00000000000b',
      (select id from public.payment_charges where idempotency_key = 'slow-1'), 'pending', 'ZP-1')$$,
  $$values ('dead', true)$$, 'after 14 days without confirmation the charge is dead for staff to look up');
reset role;
select is((select count(*) from public.payments where idempotency_key like 'slow-1%'), 0::bigint, 'and no payment was recorded for it');

select * from finish();
rollback;
