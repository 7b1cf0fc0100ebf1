-- Payments in bulk (record_payments_in_bulk): the same records as record_payment, set-based;
-- a batch with any problem is refused whole. Organization B's seed invoice is past due with
-- 3538 cents owed.
begin;
select no_plan();

create temp table payment_batch (account_id uuid, invoice_id uuid, amount_cents bigint, idempotency_key text, method text, provider text,
  provider_payment_id text, succeeded boolean, failure_code text, failure_message text, received_at timestamptz);

-- Refused whole: nothing of a bad batch is written.
insert into payment_batch values
  ('ac000000-0000-4000-8000-00000000000b', null, 100, 'bulk-1', 'card', 'stripe', 'ch_b1', true, null, null, '2026-03-20'),
  ('ac000000-0000-4000-8000-00000000000b', null, 100, 'bulk-1', 'card', 'stripe', 'ch_b2', true, null, null, '2026-03-20');
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  '22023', 'idempotency key bulk-1 appears 2 times in the batch', 'a key twice in the batch');
truncate payment_batch;
insert into payment_batch values
  ('ac000000-0000-4000-8000-00000000000b', null, 100, 'seed-partial-b', 'ach', 'zift', null, true, null, null, '2026-03-20');
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  '22023', 'idempotency key seed-partial-b was already used', 'a key already recorded');
truncate payment_batch;
insert into payment_batch values
  ('ac000000-0000-4000-8000-00000000000b', null, 100, 'bulk-2', 'card', 'stripe', null, false, null, null, '2026-03-20');
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  '22023', 'failed payment bulk-2 needs the provider''s failure code', 'a failure without its code');
truncate payment_batch;
insert into payment_batch values
  ('ac000000-0000-4000-8000-00000000000a', (select id from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'),
   100, 'bulk-3', 'card', 'stripe', null, true, null, null, '2026-03-20');
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  '22023', null, 'an account of another organization, or an invoice of another account');
select is((select count(*) from public.payments where idempotency_key like 'bulk-%'), 0::bigint, 'nothing was written by the refused batches');

-- A good batch: a decline, then the payment of the invoice with 462 cents more (to the wallet),
-- and a payment naming no invoice (all to the wallet).
truncate payment_batch;
insert into payment_batch values
  ('ac000000-0000-4000-8000-00000000000b', (select id from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'),
   3538, 'bulk-declined', 'card', 'stripe', 'ch_bulk_0', false, 'card_declined', 'The card was declined.', '2026-03-20 10:00+00'),
  ('ac000000-0000-4000-8000-00000000000b', (select id from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'),
   4000, 'bulk-paid', 'card', 'stripe', 'ch_bulk_1', true, null, null, '2026-03-21 10:00+00'),
  ('ac000000-0000-4000-8000-00000000000b', null, 250, 'bulk-extra', 'cash', 'manual', null, true, null, null, '2026-03-22 10:00+00');
select results_eq($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  $$ values (3, 2, 1, 3538::bigint, 712::bigint) $$, 'three payments, two succeeded, 3538 settled, 462 + 250 to the wallet');
select results_eq($$ select status::text, amount_paid_cents from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b' $$,
  $$ values ('paid', 6538::bigint) $$, 'the invoice is paid');
select results_eq(
  $$ select status::text, failure_code, provider_payment_id from public.payments where idempotency_key like 'bulk-%' order by received_at $$,
  $$ values ('failed', 'card_declined', 'ch_bulk_0'), ('succeeded', null, 'ch_bulk_1'), ('succeeded', null, null) $$,
  'the attempts are kept as record_payment keeps them');
select results_eq(
  $$ select kind, amount_cents, balance_after_cents from public.wallet_transactions
     where organization_id = '10000000-0000-4000-8000-00000000000b' and payment_id is not null and created_at = now() order by balance_after_cents $$,
  $$ values ('overpayment', 462::bigint, 462::bigint), ('overpayment', 250::bigint, 712::bigint) $$,
  'what the invoice did not need is in the wallet, balances running in order');
select is((select count(*) from (select transaction_id from public.ledger_entries where organization_id = '10000000-0000-4000-8000-00000000000b'
    group by transaction_id having sum(amount_cents) <> 0) t), 0::bigint, 'every ledger transaction balances');
select is(
  (select sum(amount_cents)::bigint from public.ledger_entries where organization_id = '10000000-0000-4000-8000-00000000000b' and ledger_account = 'accounts_receivable'),
  0::bigint, 'nothing is receivable any more');
select is(
  (select -sum(amount_cents)::bigint from public.ledger_entries where organization_id = '10000000-0000-4000-8000-00000000000b' and ledger_account = 'wallet_liability'),
  (select private.wallet_balance('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b')),
  'the wallet liability equals the wallet balance');

-- The same batch again is refused (the keys are used), so a retried load cannot pay twice.
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$,
  '22023', null, 'a batch recorded once cannot be recorded again');

-- Only staff who may record payments.
set local role authenticated;
select set_config('request.jwt.claims', json_build_object('sub', 'b0000000-0000-4000-8000-000000000006', 'role', 'authenticated')::text, true);
select throws_ok($$ select * from public.record_payments_in_bulk('10000000-0000-4000-8000-00000000000b') $$, '42501', null, 'a viewer may not');
reset role;

select * from finish();
rollback;
