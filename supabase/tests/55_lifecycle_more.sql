-- More of the line lifecycle: device change, port-in, add-ons and refused transitions.
begin;
select plan(16);

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;
create function pg_temp.as_service() returns void language sql as $$
  select set_config('request.jwt.claims', '{"role":"service_role"}', true);
  set local role service_role;
$$;

-- Inventory for this file: a BYOD device that is incompatible, an AT&T SIM, more Verizon SIMs.
insert into public.devices (organization_id, id, imei, make, model, byod, compatibility) values
  ('10000000-0000-4000-8000-00000000000a', 'de300000-0000-4000-8000-00000000000a', '490154203237518', 'Old', 'Flip 2G', true, 'incompatible');
insert into public.sim_cards (organization_id, id, iccid, carrier_id) values
  ('10000000-0000-4000-8000-00000000000a', '56000000-0000-4000-8000-00000000000a', '89014103211118510720', 'ca200000-0000-4000-8000-00000000000a'),
  ('10000000-0000-4000-8000-00000000000a', '57000000-0000-4000-8000-00000000000a', '8965880812100011146', 'ca100000-0000-4000-8000-00000000000a');

-- Device change.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.change_device('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'de300000-0000-4000-8000-00000000000a') $$,
  'P0001', 'device 490154203237518 (Flip 2G) is not compatible with the network', 'an incompatible device is refused');
select is((public.change_device('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'de200000-0000-4000-8000-00000000000a')).current_device_id,
  'de200000-0000-4000-8000-00000000000a'::uuid, 'an agent records the customer''s own phone');
select is((select payload ->> 'new_imei' from public.carrier_commands where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and status = 'pending'),
  '353918100000021', 'the carrier is told the new IMEI');
reset role;
select pg_temp.as_service();
select is((public.complete_carrier_command('10000000-0000-4000-8000-00000000000a',
           (select id from public.carrier_commands where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and status = 'pending'),
           false, '{}', 'IMEI blacklisted')).status, 'failed'::public.command_status, 'the carrier refuses the device');
reset role;
select is((select current_device_id from public.subscribers where id = '5b100000-0000-4000-8000-00000000000a'),
  'de100000-0000-4000-8000-00000000000a'::uuid, 'the refusal puts the previous device back');

-- Refused transitions change nothing.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.swap_sim('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', '56000000-0000-4000-8000-00000000000a') $$,
  'P0001', 'SIM 89014103211118510720 belongs to another carrier than line +13125550101', 'a SIM of another carrier cannot be swapped in');
select throws_ok($$ select public.restore_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a') $$,
  'P0001', 'cannot restore line +13125550101 while it is active', 'an active line cannot be restored');
select throws_ok($$ select public.suspend_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-0000000000ff', 'fraud') $$,
  'P0002', 'there is no line 5b100000-0000-4000-8000-0000000000ff in this organization', 'an unknown line is refused');
select throws_ok($$ select public.suspend_subscriber('10000000-0000-4000-8000-00000000000b', '5b100000-0000-4000-8000-00000000000b', 'fraud') $$,
  '42501', 'you are not a member of organization 10000000-0000-4000-8000-00000000000b', 'another organization''s line is refused');
select is((public.add_add_on('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'ad100000-0000-4000-8000-00000000000a')).effective
            @> now() + interval '29 days', true, 'a one-off data pack lasts 30 days');
reset role;

-- Port-in: a pending line with the ported number; the PIN goes nowhere but its table.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000003');
create temp table ported on commit drop as
  select * from public.port_in('10000000-0000-4000-8000-00000000000a', 'ac100000-0000-4000-8000-00000000000a', '(718) 555-0123',
    '57000000-0000-4000-8000-00000000000a', 'ba200000-0000-4000-8000-00000000000a', 'Old Mobile', 'OM-99812', '8642');
grant select on ported to service_role;
select throws_ok($$ select public.cancel_subscriber('10000000-0000-4000-8000-00000000000a', (select id from ported)) $$,
  'P0001', 'cannot cancel line +17185550123 while it is pending', 'a pending line cannot be cancelled');
reset role;
select results_eq($$ select l.status::text, l.mdn, c.kind::text, c.payload ? 'pin', c.payload ->> 'losing_carrier'
                     from public.subscribers l join ported p using (id)
                     join public.carrier_commands c on c.subscriber_id = l.id and c.status = 'pending' $$,
  $$ values ('pending', '+17185550123', 'port_in', false, 'Old Mobile') $$, 'the port-in is queued without the PIN in its payload');
select is((select count(*) from audit.entries where table_name = 'public.port_requests'
           and (row_data ? 'pin' or row_data ? 'account_number')), 0::bigint, 'the PIN and account number never reach the audit trail');
select pg_temp.as_service();
select is((select pin from public.port_requests where subscriber_id = (select id from ported)), '8642', 'the service role reads the PIN to send the port');
select is((public.complete_carrier_command('10000000-0000-4000-8000-00000000000a',
           (select id from public.carrier_commands where subscriber_id = (select id from ported) and status = 'pending'),
           false, '{}', 'PIN does not match losing carrier records')).status, 'failed'::public.command_status, 'the losing carrier rejects the port');
reset role;
select results_eq($$ select l.status::text, r.status::text, r.rejection_reason,
                            (select state::text from public.sim_cards where id = '57000000-0000-4000-8000-00000000000a')
                     from public.subscribers l join ported p using (id) join public.port_requests r on r.subscriber_id = l.id $$,
  $$ values ('failed', 'rejected', 'PIN does not match losing carrier records', 'inventory') $$,
  'a rejected port leaves a failed line, the rejection reason and the SIM back in inventory');

select * from finish();
rollback;
