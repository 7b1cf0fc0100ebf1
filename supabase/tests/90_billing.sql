-- Billing: the seed's invoice, proration and rating cases computed by hand, re-runs, late
-- usage, payments, credit notes, wallets, dunning, the ledger invariants and bad input.
-- Amounts in comments are worked out by hand from the plans: TALK-TEXT $15, DATA-5 $25
-- (5,120 MB, $10/GB over), UNLIMITED $45, and SHARE-2 $20 (2,048 MB pooled, $10/GB over).
begin;
select no_plan();

-- The seed's February 2026 invoice of account ac000000 (Chicago, Cook County, IL):
-- DATA-5 2500 + international add-on 500 + activation fee 2500 = 5500; taxes on 5500:
-- USF 13.6% = 748, IL 6.25% = 343.75 -> 344, Cook 1.75% = 96.25 -> 96, IL 911 1 line x 150.
select results_eq(
  $$select l.kind::text, l.amount_cents from public.invoice_lines l join public.invoices i on i.organization_id = l.organization_id and i.id = l.invoice_id
    where i.organization_id = '10000000-0000-4000-8000-00000000000a' and i.billing_month = '2026-02-01' order by l.line_number$$,
  $$values ('recurring', 2500::bigint), ('add_on', 500), ('one_off', 2500), ('tax', 96), ('tax', 748), ('tax', 150), ('tax', 344)$$,
  'seed invoice: plan, add-on and activation fee on the line, then USF, state and county tax and the 911 fee');
select results_eq(
  $$select subtotal_cents, discount_cents, tax_cents, total_cents, display_number, period_start::text, period_end::text, due_on::text
    from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000a'$$,
  $$values (5500::bigint, 0::bigint, 1338::bigint, 6838::bigint, 'INV-000001', '2026-02-05', '2026-03-05', '2026-03-06')$$,
  'seed invoice totals, first number, cycle from the billing day and due date after the payment terms');
select is((select status::text from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000a'), 'paid',
  'paid in full after the declined card');
select is(
  (select array_agg(step::text order by step) from public.dunning_events where organization_id = '10000000-0000-4000-8000-00000000000a'),
  array['reminder', 'past_due'], 'two days late it was past due and got the day-1 reminder');
select is(
  (select private.wallet_balance('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a')), 500::bigint,
  'a credit note on a paid invoice went to the wallet');
select results_eq(
  $$select amount_paid_cents, amount_credited_cents, status::text from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000b'$$,
  $$values (3000::bigint, 300::bigint, 'past_due')$$,
  'B: credit note 300, wallet top-up 1000 and ACH 2000 applied; still owed, so past due');

-- A scenario of our own in organization A, without taxes, in 2028 (a leap year).
delete from public.tax_rates where organization_id = '10000000-0000-4000-8000-00000000000a';
insert into public.plans (organization_id, id, code, name, price_cents, data_mb, overage_data_cents_per_gb, carrier_rate_plan_id, pooled_data)
values ('10000000-0000-4000-8000-00000000000a', 'ba500000-0000-4000-8000-00000000000a', 'SHARE-2', 'Share 2 GB', 2000, 2048, 1000,
        'cb100000-0000-4000-8000-00000000000a', true);
insert into public.accounts (organization_id, id, name, city, state, postal_code, billing_day) values
  ('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', 'Pat Proration', 'Portland', 'OR', '97201', 1),
  ('10000000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a', 'Quinn Pool', 'Portland', 'OR', '97202', 1);
insert into public.subscribers (organization_id, id, account_id, mdn, carrier_id, status, network_status)
select '10000000-0000-4000-8000-00000000000a', l.id::uuid, l.account::uuid, l.mdn, 'ca100000-0000-4000-8000-00000000000a', 'active', 'active'
from (values ('5b200000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', '+15035550101'),
             ('5b300000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', '+15035550102'),
             ('5b400000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a', '+15035550103'),
             ('5b500000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a', '+15035550104')) as l (id, account, mdn);
-- L1 (…0101): talk & text, upgraded to unlimited on 2028-01-11, downgraded to 5 GB at the 2028-03-01 boundary.
-- L2 (…0102): 5 GB, cancelled on 2028-02-15. L3 and L4: the pooled plan.
insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
select '10000000-0000-4000-8000-00000000000a', s.line::uuid, s.plan::uuid,
       tstzrange(s.from_local::timestamp at time zone 'America/New_York', s.to_local::timestamp at time zone 'America/New_York', '[)')
from (values ('5b200000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a', '2027-12-20 09:00', '2028-01-11 00:00'),
             ('5b200000-0000-4000-8000-00000000000a', 'ba300000-0000-4000-8000-00000000000a', '2028-01-11 00:00', '2028-03-01 00:00'),
             ('5b200000-0000-4000-8000-00000000000a', 'ba200000-0000-4000-8000-00000000000a', '2028-03-01 00:00', null),
             ('5b300000-0000-4000-8000-00000000000a', 'ba200000-0000-4000-8000-00000000000a', '2027-12-20 09:00', '2028-02-15 00:00'),
             ('5b400000-0000-4000-8000-00000000000a', 'ba500000-0000-4000-8000-00000000000a', '2027-12-20 09:00', null),
             ('5b500000-0000-4000-8000-00000000000a', 'ba500000-0000-4000-8000-00000000000a', '2027-12-20 09:00', null)) as s (line, plan, from_local, to_local);
update public.subscribers set status = 'cancelled', network_status = 'deactivated', cancelled_at = '2028-02-15 05:00+00'
 where organization_id = '10000000-0000-4000-8000-00000000000a' and id = '5b300000-0000-4000-8000-00000000000a';
-- L1 buys a one-off 2 GB pack in February.
insert into public.subscriber_add_ons (organization_id, subscriber_id, add_on_id, effective)
values ('10000000-0000-4000-8000-00000000000a', '5b200000-0000-4000-8000-00000000000a', 'ad100000-0000-4000-8000-00000000000a',
        tstzrange('2028-02-10 17:00+00', '2028-03-11 17:00+00', '[)'));
-- Usage: L2 6.2 GiB in January (1.2 GiB over 5 GiB: 2 started GB); L3 3 GiB and L4 2.5 GiB in February
-- (pool of 4 GiB: 1.5 GiB over, 2 started GB).
insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes) values
  ('10000000-0000-4000-8000-00000000000a', '5b300000-0000-4000-8000-00000000000a', '2028-01-15', 6657199309),
  ('10000000-0000-4000-8000-00000000000a', '5b400000-0000-4000-8000-00000000000a', '2028-02-10', 3221225472),
  ('10000000-0000-4000-8000-00000000000a', '5b500000-0000-4000-8000-00000000000a', '2028-02-12', 2684354560);
insert into public.account_discounts (organization_id, account_id, description, percent_off, starts_on)
values ('10000000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a', 'Family promotion 25%', 25, '2028-03-01');

-- January 2028, run on the 2nd: only the billing-day-1 accounts are due (the seed's accounts bill on the 5th and 15th).
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-01-01', '2028-01-02 12:00-05')$$,
  $$values (2, 8000::bigint)$$, 'January: P 1500 + 2500 and Q 2 x 2000; no prorations before billing ran');
-- February 2028: P = unlimited 4500 + 5 GB 2500 in advance; January prorated over 31 days:
-- unused talk & text 21 days = -round(1500 x 21/31) = -1016, unlimited 21 days = round(4500 x 21/31) = 3048;
-- L2's January overage 2 GB x 1000 = 2000. Total 11032.
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-02-01', '2028-02-02 12:00-05')$$,
  $$values (2, 15032::bigint)$$, 'February: P 11032 and Q 4000');
select results_eq(
  $$select l.kind::text, l.description, l.amount_cents from public.invoice_lines l join public.invoices i on i.id = l.invoice_id
    where i.account_id = 'ac200000-0000-4000-8000-00000000000a' and i.billing_month = '2028-02-01' order by l.line_number$$,
  $$values ('recurring', 'Unlimited · +15035550101', 4500::bigint),
           ('proration', 'Unused Talk & Text + 1 GB, 21 of 31 days · +15035550101', -1016::bigint),
           ('proration', 'Unlimited, 21 of 31 days from 2028-01-11 · +15035550101', 3048::bigint),
           ('recurring', '5 GB · +15035550102', 2500::bigint),
           ('usage', 'Data overage · +15035550102', 2000::bigint)$$,
  'mid-cycle upgrade credited and charged by days; overage in arrears');

-- A late record for L2's January (already invoiced): +1.5 GiB makes 7.7 GiB, 3 GB over -> 3000, 1000 more than billed.
update public.usage_daily set data_bytes = data_bytes + 1610612736
 where organization_id = '10000000-0000-4000-8000-00000000000a' and subscriber_id = '5b300000-0000-4000-8000-00000000000a' and day = '2028-01-15';

-- March 2028 (February has 29 days): P = 5 GB for L1 (downgrade at the boundary, no proration) 2500,
-- L2 cancelled on the 15th: 15 unused days = -round(2500 x 15/29) = -1293, the 2 GB pack 1000,
-- January re-rated +1000. Total 3207. Q = 4000 - 25% (1000) + shared overage 2000 = 5000.
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-03-01', '2028-03-02 12:00-05')$$,
  $$values (2, 8207::bigint)$$, 'March: P 3207 and Q 5000');
select results_eq(
  $$select l.kind::text, l.amount_cents, l.quantity from public.invoice_lines l join public.invoices i on i.id = l.invoice_id
    where i.account_id = 'ac200000-0000-4000-8000-00000000000a' and i.billing_month = '2028-03-01' order by l.line_number$$,
  $$values ('recurring', 2500::bigint, 1::numeric), ('add_on', 1000, 1), ('proration', -1293, 15), ('usage_adjustment', 1000, 1)$$,
  'leap-year February: cancellation credit over 29 days; a one-off pack; the late record as an adjustment');
select results_eq(
  $$select l.kind::text, l.description, l.amount_cents from public.invoice_lines l join public.invoices i on i.id = l.invoice_id
    where i.account_id = 'ac300000-0000-4000-8000-00000000000a' and i.billing_month = '2028-03-01' order by l.line_number$$,
  $$values ('recurring', 'Share 2 GB · +15035550103', 2000::bigint), ('recurring', 'Share 2 GB · +15035550104', 2000::bigint),
           ('usage', 'Shared data overage', 2000::bigint), ('discount', 'Family promotion 25%', -1000::bigint)$$,
  'pooled overage once per account; the discount on the recurring charges');

-- Re-running a month changes nothing.
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-03-01', '2028-03-02 12:00-05')$$,
  $$values (0, 0::bigint)$$, 're-running March bills nobody again');
select is((select count(*)::int from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000a' and billing_month = '2028-03-01'),
  2, 'still two March invoices');

-- Open-period rating: L1's March on 5 GB; 6 GiB is 1 GB over, a late record for March re-rates it.
insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes)
values ('10000000-0000-4000-8000-00000000000a', '5b200000-0000-4000-8000-00000000000a', '2028-03-05', 6442450944);
select is((select overage_cents from public.rate_usage('10000000-0000-4000-8000-00000000000a', '2028-03-01')
            where subscriber_id = '5b200000-0000-4000-8000-00000000000a'), 1000::bigint, 'open March: 1 GB over so far');
update public.usage_daily set data_bytes = data_bytes + 536870912
 where organization_id = '10000000-0000-4000-8000-00000000000a' and subscriber_id = '5b200000-0000-4000-8000-00000000000a' and day = '2028-03-05';
select is((select overage_cents from public.rate_usage('10000000-0000-4000-8000-00000000000a', '2028-03-01')
            where subscriber_id = '5b200000-0000-4000-8000-00000000000a'), 2000::bigint, 'a late record re-rates the open period: 1.5 GiB over = 2 GB');

-- Bad bill runs.
select throws_ok($$select public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-01-01', '2028-03-05 12:00-05')$$,
  '22023', 'billing month 2028-01 is closed: 2028-03 has been billed already', 'a closed month is refused');
select throws_like($$select public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-04-15')$$,
  '%give its first day%', 'a month is named by its first day');
select throws_like($$select public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2099-01-01')$$,
  '%has not started%', 'a future month is refused');
select throws_ok($$insert into public.plans (organization_id, code, name, carrier_rate_plan_id) values
  ('10000000-0000-4000-8000-00000000000a', 'NOPRICE', 'No price', 'cb100000-0000-4000-8000-00000000000a')$$,
  '23502', null, 'a plan without a price is refused');
select throws_ok($$insert into public.tax_rates (organization_id, code, name, kind, percent, per_line_cents) values
  ('10000000-0000-4000-8000-00000000000a', 'BOTH', 'Both', 'sales_tax', 5, 100)$$,
  '23514', null, 'a tax rate is a percentage or a per-line amount, not both');
select throws_ok($$insert into public.account_charges (organization_id, account_id, kind, description, amount_cents) values
  ('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', 'one_off', 'Negative fee', -100)$$,
  '23514', null, 'a one-off charge is positive (credits are their own kind)');

-- A failing bill run leaves nothing behind: no invoice, no run, no number, charge still pending.
insert into public.account_charges (organization_id, id, account_id, kind, description, amount_cents, charge_on)
values ('10000000-0000-4000-8000-00000000000a', 'c4b00000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a',
        'one_off', 'SIM replacement', 500, '2028-03-20');
create function public.test_fail_on_sim_replacement() returns trigger language plpgsql as $f$
begin
  if new.description like 'SIM replacement%' then raise exception 'injected failure'; end if;
  return new;
end $f$;
create trigger test_fail before insert on public.invoice_lines for each row execute function public.test_fail_on_sim_replacement();
select throws_ok($$select public.run_bill_cycle('10000000-0000-4000-8000-00000000000a', '2028-04-01', '2028-04-02 12:00-04')$$,
  'P0001', 'injected failure', 'the bill run fails part-way');
select results_eq(
  $$select (select count(*) from public.invoices where organization_id = '10000000-0000-4000-8000-00000000000a' and billing_month = '2028-04-01')::int,
           (select count(*) from public.bill_runs where organization_id = '10000000-0000-4000-8000-00000000000a' and billing_month = '2028-04-01')::int,
           (select next_invoice_number from public.billing_policies where organization_id = '10000000-0000-4000-8000-00000000000a'),
           (select invoice_id is null from public.account_charges where id = 'c4b00000-0000-4000-8000-00000000000a')$$,
  $$values (0, 0, 8::bigint, true)$$, 'after the failure: no April invoice or run, the next number unused, the charge pending');
drop trigger test_fail on public.invoice_lines;
drop function public.test_fail_on_sim_replacement();

-- Payments: idempotent by key, refused when the key is reused for something else.
select lives_ok($$select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', 1000, 'pay-p-1')$$,
  'a first payment of 10.00 on P');
select lives_ok($$select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', 1000, 'pay-p-1')$$,
  'the same payment again is answered');
select is((select count(*)::int from public.payments where idempotency_key = 'pay-p-1'), 1, 'recorded once');
select is((select count(*)::int from public.ledger_entries e join public.payments p on p.id = e.payment_id where p.idempotency_key = 'pay-p-1'),
  2, 'posted once: cash and the receivable of the oldest open invoice');
select throws_ok($$select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', 999, 'pay-p-1')$$,
  '22023', null, 'a key reused for another amount is refused');
select throws_ok($$select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a', -5, 'pay-p-2')$$,
  '22023', null, 'a negative payment is refused');
select is((select count(*)::int from public.payments where idempotency_key = 'pay-p-2'), 0, 'and nothing was written');

-- Wallet top-ups: a repeated top-up credits once.
select lives_ok($$select public.top_up_wallet('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', 2500, 'topup-1')$$, 'a top-up');
select lives_ok($$select public.top_up_wallet('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', 2500, 'topup-1')$$, 'the same top-up again');
select is(private.wallet_balance('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a'), 2500::bigint, 'credited once');
select throws_ok($$select public.top_up_wallet('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', 3000, 'topup-1')$$,
  '22023', null, 'the key with another amount is refused');

-- Dunning. P owes January (4000 - 1000 paid, due 2028-01-16), February (11032, due 02-16) and March
-- (3207, due 03-16); Q owes 4000, 4000 and 5000 on the same days. Policy: reminders on days 1 and 7,
-- past due after 1 day, suspension after 15, write-off after 90.
select results_eq(
  $$select step::text, invoices from public.run_dunning('10000000-0000-4000-8000-00000000000a', '2028-03-18 12:00-04') where invoices > 0 order by step$$,
  $$values ('past_due', 6), ('reminder', 6), ('suspended', 4)$$,
  'March 18: six invoices past due with their latest reminder; January and February are 15+ days late: suspension');
select results_eq(
  $$select l.id::text, l.status::text, l.suspend_reason::text from public.subscribers l
    where l.account_id in ('ac200000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a') order by l.mdn$$,
  $$values ('5b200000-0000-4000-8000-00000000000a', 'suspended', 'non_payment'), ('5b300000-0000-4000-8000-00000000000a', 'cancelled', null),
           ('5b400000-0000-4000-8000-00000000000a', 'suspended', 'non_payment'), ('5b500000-0000-4000-8000-00000000000a', 'suspended', 'non_payment')$$,
  'every live line of both accounts is suspended for non-payment (the cancelled one is left alone)');
select is((select array_agg(distinct status::text) from public.accounts where id in ('ac200000-0000-4000-8000-00000000000a', 'ac300000-0000-4000-8000-00000000000a')),
  array['suspended'], 'both accounts are suspended');
select is((select count(*)::int from public.carrier_commands where subscriber_id = '5b200000-0000-4000-8000-00000000000a' and kind = 'suspend'),
  1, 'the carrier is told through the outbox');
select results_eq(
  $$select step::text, invoices from public.run_dunning('10000000-0000-4000-8000-00000000000a', '2028-04-01 12:00-04') where invoices > 0 order by step$$,
  $$values ('reminder', 2), ('suspended', 2)$$, 'April 1: the March invoices reach day 7 and day 15');
select is((select count(*)::int from public.carrier_commands where subscriber_id = '5b200000-0000-4000-8000-00000000000a' and kind = 'suspend'),
  1, 'a line already suspended is not suspended twice');
-- The carrier confirms the suspension (so the line can be restored).
select lives_ok($$select public.complete_carrier_command('10000000-0000-4000-8000-00000000000a', c.id, true)
  from public.carrier_commands c where c.subscriber_id = '5b200000-0000-4000-8000-00000000000a' and c.kind = 'suspend'$$,
  'the carrier confirms the suspension');
-- Paying everything owed restores at once.
select lives_ok($$select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac200000-0000-4000-8000-00000000000a',
  (select sum(total_cents - amount_paid_cents - amount_credited_cents)::bigint from public.invoices
    where account_id = 'ac200000-0000-4000-8000-00000000000a' and status in ('open', 'past_due')), 'pay-p-all')$$, 'P pays what is owed');
select results_eq(
  $$select l.status::text, a.status::text,
           (select count(*)::int from public.invoices i where i.account_id = a.id and i.status <> 'paid') from public.subscribers l
    join public.accounts a on a.id = l.account_id where l.id = '5b200000-0000-4000-8000-00000000000a'$$,
  $$values ('active', 'active', 0)$$, 'paid: invoices settled, line and account restored');
select is((select count(*)::int from public.dunning_events where account_id = 'ac200000-0000-4000-8000-00000000000a' and step = 'restored'), 1,
  'the restore is recorded');
-- Q never pays: suspended, then written off after 90 days.
select results_eq(
  $$select step::text, invoices from public.run_dunning('10000000-0000-4000-8000-00000000000a', '2028-06-20 12:00-04') where invoices > 0 order by step$$,
  $$values ('written_off', 3)$$, 'June 20: Q''s three invoices are 90+ days late and written off');
select is((select sum(amount_cents)::bigint from public.ledger_entries where organization_id = '10000000-0000-4000-8000-00000000000a' and ledger_account = 'bad_debt'),
  13000::bigint, 'bad debt = Q''s three invoices 4000 + 4000 + 5000');

-- Credit notes: numbered gaplessly, never more than the invoice.
select throws_like($$select public.issue_credit_note('10000000-0000-4000-8000-00000000000a',
  (select id from public.invoices where account_id = 'ac200000-0000-4000-8000-00000000000a' and billing_month = '2028-03-01'), 3208, 'too much')$$,
  '%between 1 and 3207%', 'a credit note cannot exceed its invoice');
select lives_ok($$select public.issue_credit_note('10000000-0000-4000-8000-00000000000a',
  (select id from public.invoices where account_id = 'ac200000-0000-4000-8000-00000000000a' and billing_month = '2028-03-01'), 207, 'Outage')$$,
  'a credit note on a paid invoice');
select is((select array_agg(number order by number) from public.credit_notes where organization_id = '10000000-0000-4000-8000-00000000000a'),
  array[1, 2]::bigint[], 'credit notes 1 and 2');

-- Refund: the wallet part first, then the invoice it paid reopens.
select lives_ok($$select public.refund_payment('10000000-0000-4000-8000-00000000000a',
  (select id from public.payments where idempotency_key = 'pay-p-all'), 500, 'Customer request')$$, 'a partial refund');
select is((select refunded_cents from public.payments where idempotency_key = 'pay-p-all'), 500::bigint, 'the refund is on the payment');

-- A negative invoice: in organization B, a single-line account cancelled on 2027-01-10 gets, in
-- February, only the credit for 22 unused days of January: -round(2500 x 22/31) = -1774. The
-- invoice (with the USF credited too, -241: -2015) is paid at once and the credit moves to the wallet,
-- which pays 2015 of January's 2840.
insert into public.accounts (organization_id, id, name, state, billing_day)
values ('10000000-0000-4000-8000-00000000000b', 'ac400000-0000-4000-8000-00000000000b', 'Rae Refund', 'OR', 1);
insert into public.subscribers (organization_id, id, account_id, mdn, carrier_id, status, network_status)
values ('10000000-0000-4000-8000-00000000000b', '5b600000-0000-4000-8000-00000000000b', 'ac400000-0000-4000-8000-00000000000b',
        '+15035550199', 'ca100000-0000-4000-8000-00000000000b', 'cancelled', 'deactivated');
insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
values ('10000000-0000-4000-8000-00000000000b', '5b600000-0000-4000-8000-00000000000b', 'ba200000-0000-4000-8000-00000000000b',
        tstzrange('2026-12-20 09:00 America/Chicago', '2027-01-10 00:00 America/Chicago', '[)'));
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000b', '2027-01-01', '2027-01-02 12:00-06')$$,
  $$values (1, 2840::bigint)$$, 'B, January 2027: the 5 GB plan in advance, with B''s federal USF (13.6%: 340)');
select results_eq(
  $$select invoices_created, total_cents from public.run_bill_cycle('10000000-0000-4000-8000-00000000000b', '2027-02-01', '2027-02-02 12:00-06')$$,
  $$values (1, -2015::bigint)$$, 'B, February 2027: only the cancellation credit, with its USF (-241)');
select results_eq(
  $$select billing_month::text, status::text, amount_paid_cents from public.invoices
    where account_id = 'ac400000-0000-4000-8000-00000000000b' order by billing_month$$,
  $$values ('2027-01-01', 'open', 2015::bigint), ('2027-02-01', 'paid', 0::bigint)$$,
  'the negative invoice is settled; its credit went to the wallet and paid most of January');
select is(private.wallet_balance('10000000-0000-4000-8000-00000000000b', 'ac400000-0000-4000-8000-00000000000b'), 0::bigint,
  'the wallet passed the credit on');

-- The invariants, over everything above and the seed. What an invoice still owes is
-- greatest(total, 0) - paid - credited - written off (a negative invoice owes nothing).
select is((select count(*)::int from public.invoices i
           where i.total_cents <> (select coalesce(sum(l.amount_cents), 0) from public.invoice_lines l where l.organization_id = i.organization_id and l.invoice_id = i.id)),
  0, 'every invoice total is the sum of its lines');
select is((select count(*)::int from (select 1 from public.ledger_entries group by organization_id, transaction_id having sum(amount_cents) <> 0) t),
  0, 'every ledger transaction sums to zero');
select is((select count(*)::int from public.invoices i
           where greatest(i.total_cents, 0) - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents
              <> (select coalesce(sum(e.amount_cents), 0) from public.ledger_entries e
                  where e.organization_id = i.organization_id and e.invoice_id = i.id and e.ledger_account = 'accounts_receivable')),
  0, 'each invoice''s receivable in the ledger equals what is still owed on it');
select results_eq(
  $$select o.id, coalesce((select sum(e.amount_cents) from public.ledger_entries e where e.organization_id = o.id and e.ledger_account = 'accounts_receivable'), 0)::bigint
    from public.organizations o order by o.id$$,
  $$select o.id, coalesce((select sum(i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents)
                           from public.invoices i where i.organization_id = o.id and i.status in ('open', 'past_due')), 0)::bigint
    from public.organizations o order by o.id$$,
  'the sum of accounts receivable is the sum of unpaid invoice balances, per organization');
select results_eq(
  $$select o.id, coalesce((select -sum(e.amount_cents) from public.ledger_entries e where e.organization_id = o.id and e.ledger_account = 'wallet_liability'), 0)::bigint
    from public.organizations o order by o.id$$,
  $$select o.id, coalesce((select sum(w.amount_cents) from public.wallet_transactions w where w.organization_id = o.id), 0)::bigint
    from public.organizations o order by o.id$$,
  'the wallet liability is the sum of wallet balances');
select is((select count(*)::int from (select organization_id from public.invoices group by organization_id
                                      having max(number) - min(number) + 1 <> count(*) or min(number) <> 1) t),
  0, 'invoice numbers run 1..n without a gap in each organization');
select throws_ok($$insert into public.ledger_entries (organization_id, transaction_id, source, ledger_account, amount_cents)
  values ('10000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'payment', 'cash', 100)$$,
  '23514', null, 'an unbalanced ledger transaction is refused');
select throws_ok($$update public.ledger_entries set amount_cents = 0 where organization_id = '10000000-0000-4000-8000-00000000000a'$$,
  '42501', null, 'the ledger is append-only');
select throws_ok($$delete from public.invoice_lines where organization_id = '10000000-0000-4000-8000-00000000000a'$$,
  '42501', null, 'invoice lines are append-only');

-- Customers see their own invoice and its page; other accounts' stay hidden.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "c0000000-0000-4000-8000-00000000000a", "role": "authenticated"}', true);
select is((select count(*)::int from public.invoices), 1, 'the customer sees their one invoice');
select matches(public.invoice_html((select id from public.invoices limit 1)), 'INV-000001.*Dana Reyes.*Activation fee.*\$68\.38',
  'and its HTML page');
select is(public.invoice_html((select id from public.invoices where false)), null, 'no page for nothing');
select results_eq(
  $$select account_id::text, subscriber_id::text, data_bytes from public.rate_usage('10000000-0000-4000-8000-00000000000a', '2026-01-01')$$,
  $$values ('ac000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 734003200::bigint)$$,
  'a customer rates their own line''s usage, and only theirs');
select set_config('request.jwt.claims', '{"sub": "d0000000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
select throws_ok($$select * from public.rate_usage('10000000-0000-4000-8000-00000000000a', '2026-01-01')$$,
  '42501', null, 'someone of no organization cannot rate its usage');
reset role;

select * from finish();
rollback;
