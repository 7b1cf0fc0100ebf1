-- The customer self-service backend: own account only, and only what the operator allows
-- (organizations.settings -> 'self_service'; Acme allows everything, Bolt only report_lost).
begin;
select plan(13);

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;

select pg_temp.act_as('c0000000-0000-4000-8000-00000000000a');
select is((select array_agg(name) from public.accounts), array['Dana Reyes'], 'a customer sees their own account only');
select is((select array_agg(mdn) from public.subscribers), array['+13125550101'], 'and its lines');
select is((select count(*) from public.sim_cards), 1::bigint, 'and the SIM in their phone, not the inventory');
select is((select count(*) from public.plans), 3::bigint, 'and the plans on sale (not retired ones)');
select is((select count(*) from public.notes), 0::bigint, 'but not staff notes');
select is((select count(*) from public.carrier_commands), 0::bigint, 'nor carrier commands');
select throws_ok($$ select account_number from public.port_requests $$, '42501', null, 'nor port secrets');

select is(public.self_service_change_plan('5b100000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a') ~ '^at ', true,
  'the customer schedules a downgrade of their own line');
select throws_ok($$ select public.self_service_change_plan('5b100000-0000-4000-8000-00000000000a', 'ba300000-0000-4000-8000-00000000000a') $$,
  '42501', 'this plan cannot be chosen online', 'plans not offered online are refused');
select throws_ok($$ select public.self_service_report_lost('5b100000-0000-4000-8000-00000000000b') $$,
  '42501', 'line 5b100000-0000-4000-8000-00000000000b is not on your account', 'another customer''s line is refused');
select is((public.self_service_report_lost('5b100000-0000-4000-8000-00000000000a')).suspend_reason, 'lost_or_stolen'::public.suspend_reason,
  'a lost phone is suspended at once');
reset role;

select pg_temp.act_as('c0000000-0000-4000-8000-00000000000b');
select throws_ok($$ select public.self_service_add_add_on('5b100000-0000-4000-8000-00000000000b', 'ad100000-0000-4000-8000-00000000000b') $$,
  '42501', 'your provider does not offer this online (add add on); please contact customer care',
  'an action the operator did not allow is refused');
select is((public.self_service_report_lost('5b100000-0000-4000-8000-00000000000b')).status, 'suspended'::public.line_status,
  'an allowed action works');
reset role;

select * from finish();
rollback;
