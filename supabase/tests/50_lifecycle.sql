-- The line lifecycle: every allowed transition writes the event log, the audit trail and
-- the outbox; every refused one changes nothing; a carrier refusal rolls the business
-- state back with the carrier's reason, visible in the activity feed.
begin;
select plan(47);

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;
create function pg_temp.as_service() returns void language sql as $$
  select set_config('request.jwt.claims', '{"role":"service_role"}', true);
  set local role service_role;
$$;
-- Answers the line's open carrier command as the worker would.
create function pg_temp.carrier_answers(line uuid, ok boolean, result jsonb default '{}', error text default null)
returns public.command_status language sql as $$
  select (public.complete_carrier_command('10000000-0000-4000-8000-00000000000a',
            (select c.id from public.carrier_commands c where c.subscriber_id = line and c.status = 'pending'), ok, result, error)).status;
$$;
create function pg_temp.line(id uuid) returns public.subscribers language sql as $$
  select * from public.subscribers where subscribers.id = line.id;
$$;

-- 1. Suspend (agent) → pending carrier request; business state now, network state on confirmation.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is((public.suspend_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'lost_or_stolen')).status,
  'suspended'::public.line_status, 'an agent suspends a line for lost or stolen');
reset role;
select is((pg_temp.line('5b100000-0000-4000-8000-00000000000a')).network_status, 'active'::public.network_status,
  'the network state waits for the carrier');
select results_eq($$ select kind::text, status::text, payload ->> 'iccid' from public.carrier_commands
                     where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and status = 'pending' $$,
  $$ values ('suspend', 'pending', '89012600000000000011') $$, 'the suspend command is queued with the SIM''s ICCID');
select is((select count(*) from audit.entries where table_name = 'public.subscribers' and action = 'update'
           and record_id = '5b100000-0000-4000-8000-00000000000a'), 1::bigint, 'the state change is audited');
select is((select actor_user_id from public.subscriber_events where subscriber_id = '5b100000-0000-4000-8000-00000000000a'
           and kind = 'suspend_requested'), 'a0000000-0000-4000-8000-000000000004'::uuid, 'the event names the agent');

-- While a request is open nothing else happens to the line.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.restore_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a') $$,
  'P0001', 'cannot restore line +13125550101: a carrier request for it is still open', 'a second request waits for the carrier');
reset role;

select pg_temp.as_service();
select is(pg_temp.carrier_answers('5b100000-0000-4000-8000-00000000000a', true, '{"requestId":"vz-1"}'),
  'succeeded'::public.command_status, 'the carrier confirms the suspension');
select is((public.complete_carrier_command('10000000-0000-4000-8000-00000000000a',
            (select id from public.carrier_commands where carrier_request_id = 'vz-1'), true)).status,
  'succeeded'::public.command_status, 'a repeated confirmation changes nothing');
reset role;
select results_eq($$ select network_status::text, (select state::text from public.sim_cards where id = current_sim_id)
                     from public.subscribers where id = '5b100000-0000-4000-8000-00000000000a' $$,
  $$ values ('suspended', 'suspended') $$, 'on confirmation the network state and the SIM follow');

-- 2. Restore refused by the carrier → back to suspended with the reason.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is((public.restore_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a')).status,
  'active'::public.line_status, 'an agent restores the line');
select throws_ok($$ select public.change_plan('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ba300000-0000-4000-8000-00000000000a') $$,
  'P0001', null, 'no plan change while the restore is open');
reset role;
select pg_temp.as_service();
select is(pg_temp.carrier_answers('5b100000-0000-4000-8000-00000000000a', false, '{}', 'Account on credit hold at carrier'),
  'failed'::public.command_status, 'the carrier refuses the restore');
reset role;
select results_eq($$ select status::text, suspend_reason::text, network_status::text from public.subscribers
                     where id = '5b100000-0000-4000-8000-00000000000a' $$,
  $$ values ('suspended', 'lost_or_stolen', 'suspended') $$, 'the refusal rolls the line back to suspended, with its reason');
select pg_temp.act_as('a0000000-0000-4000-8000-000000000005');
select results_eq($$ select kind, reason from public.subscriber_activity('5b100000-0000-4000-8000-00000000000a') limit 1 $$,
  $$ values ('restore_refused', 'Account on credit hold at carrier') $$, 'the feed says why, newest first, even to an analyst');
select ok((select bool_or(kind = 'suspend_requested' and reason = 'lost_or_stolen' and actor = 'agent@acme.test')
           from public.subscriber_activity('5b100000-0000-4000-8000-00000000000a')),
  'the feed answers "why was it suspended?" with the reason and who did it');
reset role;

-- 3. Carrier rules as data: Verizon allows no plan change while suspended.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.change_plan('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ba300000-0000-4000-8000-00000000000a') $$,
  'P0001', 'Verizon does not allow plan changes while a line is suspended', 'the carrier''s no-change-while-suspended rule holds');
select is((public.restore_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a')).status,
  'active'::public.line_status, 'restore again');
reset role;
select pg_temp.as_service();
select is(pg_temp.carrier_answers('5b100000-0000-4000-8000-00000000000a', true), 'succeeded'::public.command_status, 'confirmed');
reset role;

-- 4. Upgrade now, refused by the carrier → back on the old plan.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is(public.change_plan('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ba300000-0000-4000-8000-00000000000a'),
  'now', 'an upgrade takes effect now');
reset role;
select results_eq($$ select p.code, upper_inf(s.effective) from public.subscriptions s join public.plans p on p.id = s.plan_id and p.organization_id = s.organization_id
                     where s.subscriber_id = '5b100000-0000-4000-8000-00000000000a' order by lower(s.effective), upper(s.effective) $$,
  $$ values ('DATA-5', false), ('UNLIMITED', true) $$, 'the old subscription ends where the new one starts');
select pg_temp.as_service();
select is(pg_temp.carrier_answers('5b100000-0000-4000-8000-00000000000a', false, '{}', 'Rate plan not provisioned'), 'failed'::public.command_status,
  'the carrier refuses the new plan');
reset role;
select results_eq($$ select p.code, upper_inf(s.effective) from public.subscriptions s join public.plans p on p.id = s.plan_id and p.organization_id = s.organization_id
                     where s.subscriber_id = '5b100000-0000-4000-8000-00000000000a' $$,
  $$ values ('DATA-5', true) $$, 'the refused upgrade is undone: the old plan continues');

-- 5. Swap SIM: the old SIM is retired from the line on confirmation.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is((public.swap_sim('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', '52000000-0000-4000-8000-00000000000a')).current_sim_id,
  '52000000-0000-4000-8000-00000000000a'::uuid, 'an agent swaps in a SIM from inventory');
reset role;
select pg_temp.as_service();
select is(pg_temp.carrier_answers('5b100000-0000-4000-8000-00000000000a', true), 'succeeded'::public.command_status, 'confirmed');
reset role;
select results_eq($$ select id::text, state::text from public.sim_cards where id in ('51000000-0000-4000-8000-00000000000a', '52000000-0000-4000-8000-00000000000a') order by 1 $$,
  $$ values ('51000000-0000-4000-8000-00000000000a', 'deactivated'), ('52000000-0000-4000-8000-00000000000a', 'active') $$,
  'the new SIM is active, the old one deactivated');

-- 6. Six provisioning actions in a day: Verizon allows five.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.suspend_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'customer_request') $$,
  'P0001', 'Verizon allows 5 provisioning actions per line per day; line +13125550101 has had 5 today',
  'the carrier''s daily limit is enforced');
select is((pg_temp.line('5b100000-0000-4000-8000-00000000000a')).status, 'active'::public.line_status, '… and the refused suspension changed nothing');

-- 7. Downgrade at the end of the billing period (billing day 5, New York time); no carrier call yet.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select matches(public.change_plan('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a'),
  '^at \d{4}-\d{2}-05$', 'a downgrade waits for the next billing day');
select throws_ok($$ select public.change_plan('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ba400000-0000-4000-8000-00000000000a') $$,
  'P0001', 'plan Legacy 2 GB (retired) (LEGACY-2) is retired and cannot be chosen', 'a retired plan cannot be chosen');
reset role;
select is((select count(*) from public.carrier_commands where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and status = 'pending'),
  0::bigint, 'a scheduled downgrade sends nothing yet');
select pg_temp.as_service();
select is(public.apply_scheduled_plan_changes(now() + interval '40 days'), 0,
  'when its day comes the scheduler would queue it, but the line is at its daily limit');
reset role;
select is((select reason from public.subscriber_events where subscriber_id = '5b100000-0000-4000-8000-00000000000a'
           and kind = 'plan_change_deferred'), 'Verizon allows 5 provisioning actions per line per day; line +13125550101 has had 5 today',
  'the deferral and its reason are in the feed; the next run retries');

-- 8. Roles: a viewer cannot act; an agent cannot activate or cancel.
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000006');
select throws_ok($$ select public.suspend_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'fraud') $$,
  '42501', 'this needs the agent role or higher in the organization; you are viewer', 'a viewer cannot suspend');
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.activate_subscriber('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a',
                      '53000000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a') $$,
  '42501', null, 'an agent cannot activate lines');
reset role;

-- 9. Activation (operator) on an eSIM: pending until the carrier assigns the number.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000003');
create temp table new_line on commit drop as
  select * from public.activate_subscriber('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a',
    '53000000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a', 'de200000-0000-4000-8000-00000000000a');
grant select on new_line to service_role;
reset role;
select results_eq($$ select l.status::text, l.mdn, (select state::text from public.sim_cards where id = l.current_sim_id)
                     from public.subscribers l join new_line n using (id) $$,
  $$ values ('pending', null::text, 'assigned') $$, 'a new line is pending, its SIM assigned, its number not yet known');
select pg_temp.as_service();
select is(pg_temp.carrier_answers((select id from new_line), true, '{"mdn":"3125550155"}'), 'succeeded'::public.command_status, 'the carrier activates it');
reset role;
select results_eq($$ select l.status::text, l.network_status::text, l.mdn from public.subscribers l join new_line n using (id) $$,
  $$ values ('active', 'active', '+13125550155') $$, 'the line is active with the number the carrier gave');

-- 10. Cancel (operator) → deactivated on confirmation; billing stops now.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000003');
select is((public.cancel_subscriber('10000000-0000-4000-8000-00000000000a', (select id from new_line), 'customer moved abroad')).status,
  'cancelled'::public.line_status, 'an operator cancels the line');
reset role;
select is((select count(*) from public.subscriptions s join new_line n on s.subscriber_id = n.id where upper_inf(s.effective)),
  0::bigint, 'its subscription ends now');
select pg_temp.as_service();
select is(pg_temp.carrier_answers((select id from new_line), true), 'succeeded'::public.command_status, 'the carrier deactivates it');
reset role;
select is((select state from public.sim_cards where id = '53000000-0000-4000-8000-00000000000a'), 'deactivated'::public.sim_state,
  'the SIM of a cancelled line is deactivated');

-- 11. A refused activation leaves a failed line and the SIM back in inventory.
insert into public.sim_cards (organization_id, id, iccid, carrier_id) values
  ('10000000-0000-4000-8000-00000000000a', '55000000-0000-4000-8000-00000000000a', '89014103211118510720', 'ca100000-0000-4000-8000-00000000000a');
select pg_temp.act_as('a0000000-0000-4000-8000-000000000003');
create temp table refused_line on commit drop as
  select * from public.activate_subscriber('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a',
    '55000000-0000-4000-8000-00000000000a', 'ba100000-0000-4000-8000-00000000000a');
grant select on refused_line to service_role;
reset role;
select pg_temp.as_service();
select is(pg_temp.carrier_answers((select id from refused_line), false, '{}', 'ICCID not in carrier inventory'),
  'failed'::public.command_status, 'the carrier refuses the activation');
reset role;
select results_eq($$ select l.status::text, (select state::text from public.sim_cards where id = '55000000-0000-4000-8000-00000000000a')
                     from public.subscribers l join refused_line r using (id) $$,
  $$ values ('failed', 'inventory') $$, 'the line failed and its SIM is back in inventory');

-- 12. Port-out: the line leaves on confirmation; port-in secrets stay with the service role.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000003');
select throws_ok($$ select pin from public.port_requests $$, '42501', null, 'staff cannot read port PINs');
reset role;
select pg_temp.as_service();
select lives_ok($$ select public.port_out('10000000-0000-4000-8000-00000000000b', '5b100000-0000-4000-8000-00000000000b', 'Other Wireless') $$,
  'a service can port a line out');
select is((public.complete_carrier_command('10000000-0000-4000-8000-00000000000b',
            (select id from public.carrier_commands where subscriber_id = '5b100000-0000-4000-8000-00000000000b' and status = 'pending'), true)).status,
  'succeeded'::public.command_status, 'the gaining carrier completes the port');
reset role;
select results_eq($$ select l.status::text, p.status::text from public.subscribers l
                     join public.port_requests p on p.subscriber_id = l.id and p.direction = 'out'
                     where l.id = '5b100000-0000-4000-8000-00000000000b' $$,
  $$ values ('ported_out', 'completed') $$, 'the line is ported out and the port completed');

select * from finish();
rollback;
