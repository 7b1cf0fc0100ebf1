-- The audit trail: right actor, append-only for every application role, tamper-evident.
begin;
select plan(15);

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;

-- A change made by a user, during a request the server labelled.
select set_config('wingtel.request_id', 'req-audit-1', true);
select pg_temp.act_as('a0000000-0000-4000-8000-000000000001');
select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000006', 'analyst');
reset role;

select results_eq(
  $$ select actor_user_id, action, request_id, old_values ->> 'role', new_values ->> 'role', new_values ? 'created_at'
     from audit.changes where table_name = 'public.organization_members' and action = 'update' $$,
  $$ values ('a0000000-0000-4000-8000-000000000001'::uuid, 'update', 'req-audit-1', 'viewer', 'analyst', false) $$,
  'an update is recorded once, with the user, the request id and only the changed columns');
select is(
  (select record_id from audit.entries where table_name = 'public.organization_members' and action = 'update'),
  'a0000000-0000-4000-8000-000000000006',
  'the entry names the row by its primary key (organization_id aside)');
select is(
  (select count(*) from audit.entries where table_name = 'public.organization_invitations'),
  (select count(*) from audit.entries where table_name = 'public.organization_invitations' and not row_data ? 'token_hash'),
  'invitation token hashes never reach the audit trail');

-- A service writes through service_role and names itself.
select set_config('request.jwt.claims', '{"role":"service_role"}', true);
select set_config('wingtel.actor', 'stripe-webhook', true);
set local role service_role;
update public.organizations set settings = '{"dunning": true}' where slug = 'bolt-wireless';
reset role;
select is(
  (select actor_name from audit.entries where table_name = 'public.organizations' and action = 'update'),
  'stripe-webhook', 'a service''s changes carry its name');
select set_config('wingtel.actor', '', true);

-- Nobody changes or removes audit rows.
set local role service_role;
select throws_ok($$ update audit.entries set action = 'insert' $$, '42501', null, 'service_role cannot update audit rows');
select throws_ok($$ delete from audit.entries $$, '42501', null, 'service_role cannot delete audit rows');
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000001');
select throws_ok($$ update audit.entries set action = 'insert' $$, '42501', null, 'authenticated cannot update audit rows');
select throws_ok($$ delete from audit.entries $$, '42501', null, 'authenticated cannot delete audit rows');
reset role;
select throws_ok($$ delete from audit.entries $$, '42501', 'audit records are append-only: DELETE on audit.entries is not allowed',
  'even the table owner is stopped by the append-only trigger');

-- Who reads it.
select pg_temp.act_as('a0000000-0000-4000-8000-000000000002');
select ok((select count(*) from audit.entries) > 0 and
          (select bool_and(organization_id = '10000000-0000-4000-8000-00000000000a') from audit.entries),
  'an admin reads their organization''s audit, and only it');
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is((select array_agg(distinct category) from audit.entries), array['customer_care'],
  'an agent reads only customer-care entries');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-00000000000a');
select is((select count(*) from audit.entries), 0::bigint, 'a customer reads no audit');
reset role;

-- The chain: intact, then broken by a superuser edit, reported at the edited entry.
select is((select valid from audit.verify_chain('10000000-0000-4000-8000-00000000000a')), true,
  'the seeded chain verifies');
select ok((select sealed_entries from audit.verify_chain('10000000-0000-4000-8000-00000000000a')) >= 9,
  'entries of finished transactions are sealed');
set local session_replication_role = replica;
update audit.entries set row_data = jsonb_set(row_data, '{role}', '"owner"')
 where organization_id = '10000000-0000-4000-8000-00000000000a'
   and id = (select min(id) from audit.entries where table_name = 'public.organization_members'
             and organization_id = '10000000-0000-4000-8000-00000000000a' and action = 'insert' and row_data ->> 'role' = 'viewer');
set local session_replication_role = origin;
select results_eq(
  $$ select valid, first_broken_entry, problem from audit.verify_chain('10000000-0000-4000-8000-00000000000a') $$,
  $$ select false, (select min(id) from audit.entries where table_name = 'public.organization_members'
                     and organization_id = '10000000-0000-4000-8000-00000000000a' and action = 'insert'
                     and row_data ->> 'role' = 'owner' and row_data ->> 'user_id' like 'a%6'),
            'content or chain hash does not match' $$,
  'a row altered by a superuser is reported as the first broken entry');

select * from finish();
rollback;
