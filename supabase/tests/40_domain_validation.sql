-- Identifiers and the rules the database itself enforces, with messages an operator can act on.
-- Check digits come from ../shared/fixtures (published examples), not from our own code.
begin;
select plan(29);

select ok(public.is_valid_imei('490154203237518'), 'IMEI 490154203237518 (the standard example) is valid');
select ok(public.is_valid_imei('354178036859789'), 'IMEI 354178036859789 (python-stdnum) is valid');
select ok(public.is_valid_imei('449125546588769'), 'IMEI 449125546588769 is valid');
select ok(not public.is_valid_imei('449145545588969'), 'IMEI 449145545588969 fails its check digit');
select ok(public.is_valid_iccid('89014103211118510720'), 'ICCID 89014103211118510720 (20 digits) is valid');
select ok(not public.is_valid_iccid('89012104211118510720'), 'ICCID 89012104211118510720 fails its check digit');
select ok(public.is_valid_iccid('8965880812100011146'), 'ICCID 8965880812100011146 (19 digits) is valid');
select ok(public.is_valid_mdn('+12342355678') and public.is_valid_mdn('+12812345678'), 'NANPA''s valid examples pass');
select ok(not public.is_valid_mdn('+13141592653'), 'an exchange starting with 1 is refused (314-159-2653)');
select ok(not public.is_valid_mdn('+11232345678'), 'an area code starting with 1 is refused (123-234-5678)');
select ok(not public.is_valid_mdn('+12349115678'), 'an N11 exchange is refused (234-911-5678)');
select is(public.normalize_mdn('312-555-0142'), '+13125550142', 'a 10-digit BeQuick MDN becomes E.164');

select throws_ok($$ insert into public.sim_cards (organization_id, iccid, carrier_id)
                    values ('10000000-0000-4000-8000-00000000000a', '89012104211118510720', 'ca100000-0000-4000-8000-00000000000a') $$,
  '23514', 'ICCID 89012104211118510720 fails its check digit or is not 19–20 digits starting 89', 'a SIM with a bad ICCID is refused');
select throws_ok($$ insert into public.devices (organization_id, imei) values ('10000000-0000-4000-8000-00000000000a', '449145545588969') $$,
  '23514', 'IMEI 449145545588969 fails its check digit or is not 15 digits', 'a device with a bad IMEI is refused');
select throws_ok($$ update public.subscribers set mdn = '3125550101' where id = '5b100000-0000-4000-8000-00000000000a' $$,
  '23514', 'MDN 3125550101 is not a valid E.164 number', 'a line number that is not E.164 is refused');

-- A second live line with the same number in one organization; the other organization may use it.
insert into public.sim_cards (organization_id, id, iccid, carrier_id) values
  ('10000000-0000-4000-8000-00000000000a', '54000000-0000-4000-8000-00000000000a', '89012600000000000045', 'ca100000-0000-4000-8000-00000000000a');
select throws_ok($$ insert into public.subscribers (organization_id, account_id, mdn, carrier_id, status, current_sim_id)
                    values ('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', '+13125550101',
                            'ca100000-0000-4000-8000-00000000000a', 'pending', '54000000-0000-4000-8000-00000000000a') $$,
  '23505', 'MDN +13125550101 is already in use by another line', 'a duplicate live MDN in one organization is refused');
select lives_ok($$ insert into public.subscribers (organization_id, account_id, mdn, carrier_id, status)
                   values ('10000000-0000-4000-8000-00000000000b', 'ac100000-0000-4000-8000-00000000000b', '+13125550101',
                           'ca100000-0000-4000-8000-00000000000b', 'pending') $$,
  'another organization may use the same number');
select throws_ok($$ insert into public.subscribers (organization_id, account_id, carrier_id, status, current_sim_id)
                    values ('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a',
                            'ca100000-0000-4000-8000-00000000000a', 'pending', '51000000-0000-4000-8000-00000000000a') $$,
  '23505', 'SIM 89012600000000000011 is already assigned to another line', 'one SIM cannot serve two live lines');
select throws_ok($$ insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
                    values ('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a',
                            'ba300000-0000-4000-8000-00000000000a', tstzrange('2026-03-01', '2026-04-01', '[)')) $$,
  '23P01', null, 'overlapping subscriptions of one line are refused');
-- Bulk loads skip the per-row look-ups (they check set-based first); the index and the
-- exclusion constraint still refuse a duplicate or an overlap.
select set_config('wingtel.bulk_load', 'on', true);
select throws_ok($$ insert into public.subscribers (organization_id, account_id, mdn, carrier_id, status, current_sim_id)
                    values ('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', '+13125550101',
                            'ca100000-0000-4000-8000-00000000000a', 'pending', '54000000-0000-4000-8000-00000000000a') $$,
  '23505', null, 'in a bulk load the unique index still refuses a duplicate live MDN');
select throws_ok($$ insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
                    values ('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a',
                            'ba300000-0000-4000-8000-00000000000a', tstzrange('2026-03-01', '2026-04-01', '[)')) $$,
  '23P01', null, 'in a bulk load the exclusion constraint still refuses an overlapping subscription');
select set_config('wingtel.bulk_load', 'off', true);
select throws_ok($$ insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
                    values ('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a',
                            'ba300000-0000-4000-8000-00000000000a', tstzrange('2025-03-01', '2025-04-01', '[]')) $$,
  '23514', null, 'subscription periods are half-open [from, to)');
select throws_ok($$ update public.accounts set email = 'not-an-email' where id = 'ac000000-0000-4000-8000-00000000000a' $$,
  '23514', '"not-an-email" is not an email address', 'a malformed email is refused');
select throws_ok($$ update public.accounts set billing_day = 31 where id = 'ac000000-0000-4000-8000-00000000000a' $$,
  '23514', 'billing day 31 is outside 1–28', 'a billing day past the 28th is refused');
select throws_ok($$ update public.subscribers set status = 'suspended' where id = '5b100000-0000-4000-8000-00000000000a' $$,
  '23514', null, 'a suspended line needs a reason');
select throws_ok($$ insert into public.sim_cards (organization_id, iccid, kind, carrier_id)
                    values ('10000000-0000-4000-8000-00000000000a', '89014103211118510720', 'esim', 'ca100000-0000-4000-8000-00000000000a') $$,
  '23514', 'an eSIM needs its 32-digit EID (got none)', 'an eSIM without its EID is refused');

-- The PL/pgSQL number checks against the rules as first written (plain SQL), over 600k generated
-- spellings: punctuation, a leading 1 or +, other countries, junk before and after.
create function pg_temp.reference_is_valid_mdn(mdn text) returns boolean language sql immutable strict as $$
  select case
    when mdn ~ '^\+1' then mdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$' and substr(mdn, 4, 2) <> '11'
                         and substr(mdn, 4, 1) <> '9' and substr(mdn, 7, 2) <> '11'
    else mdn ~ '^\+[2-9][0-9]{7,14}$'
  end $$;
create function pg_temp.reference_normalize_mdn(raw text) returns text language sql immutable strict as $$
  select case
    when digits ~ '^[0-9]{10}$' and pg_temp.reference_is_valid_mdn('+1' || digits) then '+1' || digits
    when digits ~ '^1[0-9]{10}$' and pg_temp.reference_is_valid_mdn('+' || digits) then '+' || digits
    when raw ~ '^\+' and pg_temp.reference_is_valid_mdn('+' || digits) then '+' || digits
  end
  from (select regexp_replace(raw, '[^0-9]', '', 'g') as digits) as d $$;
create temp table mdn_spellings as
  select (array['', '+', '+1', '1', '(', ' ', '-', '+4', '+1 ', '11'])[1 + g % 10] || (g::bigint * 7919 % 100000000000)::text
         || (array['', 'x', ' ', '-1', '9'])[1 + g % 5] as raw
  from generate_series(1, 600000) g
  union all values ('3125550101'), ('(312) 555-0101'), ('+1 312 555 0101'), ('+442071838750'), ('1112223333'), ('+33'), (''), ('+');
select is((select count(*) from mdn_spellings where public.normalize_mdn(raw) is distinct from pg_temp.reference_normalize_mdn(raw)), 0::bigint,
  'normalize_mdn agrees with the reference rules on 600k spellings');
select is((select count(*) from mdn_spellings where public.is_valid_mdn(raw) is distinct from pg_temp.reference_is_valid_mdn(raw)
             or public.is_valid_mdn('+' || raw) is distinct from pg_temp.reference_is_valid_mdn('+' || raw)), 0::bigint,
  'is_valid_mdn agrees with the reference rules');

-- Luhn, ICCID and IMEI against a set-based reference written independently of the loop.
create function pg_temp.reference_luhn(digits text) returns boolean language sql immutable strict as $$
  select digits ~ '^[0-9]+$' and (select sum(case when i % 2 = 0 then (array[0, 2, 4, 6, 8, 1, 3, 5, 7, 9])[d + 1] else d end)
                                  from (select i, substr(reverse(digits), i, 1)::int as d from generate_series(1, length(digits)) i) x) % 10 = 0 $$;
create temp table card_numbers as
  select v.digits from generate_series(1, 40000) g,
  lateral (values ((g::bigint * 104729 % 1000000000000000)::text), ('89' || lpad((g::bigint * 7919)::text, 17, '0')),
                  ('8901' || lpad(g::text, 16, '5')), (lpad(g::text, 15, '3')), (lpad(g::text, 21 + g % 5, '4')), (g::text || 'x'), ('')) v(digits);
select is((select count(*) from card_numbers c
           where public.luhn_valid(c.digits) is distinct from pg_temp.reference_luhn(c.digits)
              or public.is_valid_iccid(c.digits) is distinct from (c.digits ~ '^89[0-9]{17,18}$' and pg_temp.reference_luhn(c.digits))
              or public.is_valid_imei(c.digits) is distinct from (c.digits ~ '^[0-9]{15}$' and pg_temp.reference_luhn(c.digits))), 0::bigint,
  'luhn_valid, is_valid_iccid and is_valid_imei agree with a set-based Luhn on 280k strings (1 to 25 digits)');

select * from finish();
rollback;
