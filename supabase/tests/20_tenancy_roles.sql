-- Organizations and members: who may do what (seed data: supabase/seed.sql).
begin;
select plan(32);

-- Act as a seeded user for the rest of the transaction, as PostgREST would.
create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;
-- Rows a statement changed (RLS hides rows rather than raising on update and delete).
create function pg_temp.affected(statement text) returns bigint language plpgsql as $$
declare changed bigint;
begin
  execute statement;
  get diagnostics changed = row_count;
  return changed;
end;
$$;

-- Owner of A
select pg_temp.act_as('a0000000-0000-4000-8000-000000000001');
select is((select count(*) from public.organizations), 1::bigint, 'a member sees only their own organization');
select is((select count(*) from public.organization_members), 6::bigint, 'a member sees their organization''s six members');
select lives_ok($$ select public.add_organization_member('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'viewer') $$,
  'the owner adds a viewer');
select throws_ok($$ select public.add_organization_member('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'viewer') $$,
  '23505', 'user d0000000-0000-4000-8000-000000000001 is already a member', 'adding a member twice is refused');
select throws_ok($$ select public.add_organization_member('10000000-0000-4000-8000-00000000000b', 'd0000000-0000-4000-8000-000000000001', 'viewer') $$,
  '42501', 'you are not a member of organization 10000000-0000-4000-8000-00000000000b', 'acting on another organization is refused');
select throws_ok($$ select public.add_organization_member('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000002', 'viewer') $$,
  'P0002', 'there is no user d0000000-0000-4000-8000-000000000002', 'an unknown user is refused');
select throws_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'boss') $$,
  '22P02', null, 'an unknown role name is refused');
select throws_ok($$ select public.remove_organization_member('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000001') $$,
  'P0001', 'the last owner cannot leave the organization', 'the last owner cannot leave');
select throws_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000001', 'admin') $$,
  'P0001', 'the last owner cannot be demoted', 'the last owner cannot be demoted');
select throws_ok($$ insert into public.organization_members values ('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'owner') $$,
  '42501', null, 'memberships cannot be written directly, even by an owner');
select lives_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000002', 'owner') $$,
  'an owner makes an admin owner');
select lives_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000002', 'admin') $$,
  'with two owners, one can be demoted again');

-- Admin of A
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000002');
select throws_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'owner') $$,
  '42501', 'only an owner can grant or take away the owner role', 'an admin cannot make an owner');
select throws_ok($$ select public.remove_organization_member('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000001') $$,
  '42501', 'only an owner can remove an owner', 'an admin cannot remove an owner');
select lives_ok($$ select public.change_member_role('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'agent') $$,
  'an admin promotes a viewer to agent');
select is((select count(*) from public.organization_invitations), 1::bigint, 'admins see their organization''s invitations');
select is(pg_temp.affected($$ update public.organizations set name = 'Acme Mobile Inc.' $$), 1::bigint,
  'an admin renames the organization');
select throws_ok($$ update public.organizations set slug = 'hijack' $$, '42501', null, 'nobody changes an organization''s slug');

-- Viewer of A
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000006');
select throws_ok($$ select public.add_organization_member('10000000-0000-4000-8000-00000000000a', 'd0000000-0000-4000-8000-000000000001', 'viewer') $$,
  '42501', 'this needs the admin role or higher in the organization; you are viewer', 'a viewer cannot manage members');
select is(pg_temp.affected($$ update public.organizations set name = 'Viewer was here' $$), 0::bigint,
  'a viewer cannot rename the organization');
select is((select count(*) from public.organization_invitations), 0::bigint, 'viewers do not see invitations');
select is(pg_temp.affected($$ delete from public.organizations $$), 0::bigint, 'a viewer cannot delete the organization');
select lives_ok($$ select public.remove_organization_member('10000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-000000000006') $$,
  'any member may leave');

-- Invitations: invite as owner, accept as the invited address only, once.
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000001');
create temp table invitation on commit drop as
  select * from public.invite_member('10000000-0000-4000-8000-00000000000a', 'outsider@example.test', 'analyst');
grant select on invitation to authenticated;
select is(length((select token from invitation)), 64, 'an invitation returns a 64-character token once');
select throws_ok($$ select public.invite_member('10000000-0000-4000-8000-00000000000a', 'outsider@example.test', 'analyst') $$,
  '23505', 'an invitation to outsider@example.test is already open', 'a second open invitation to one address is refused');
reset role;
select pg_temp.act_as('b0000000-0000-4000-8000-000000000001');
select throws_ok(format('select public.accept_invitation(%L)', (select token from invitation)),
  '42501', 'this invitation is for another email address', 'someone else cannot use the invitation');
reset role;
select pg_temp.act_as('d0000000-0000-4000-8000-000000000001');
select is((select (public.accept_invitation((select token from invitation))).role), 'agent'::public.member_role,
  'accepting keeps the higher role the user already had');
select throws_ok(format('select public.accept_invitation(%L)', (select token from invitation)),
  'P0001', 'this invitation was already used', 'an invitation works once');
select throws_ok($$ select public.accept_invitation('not-a-token') $$, 'P0002', 'invitation not found', 'an unknown token is refused');

-- Customers and strangers
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-00000000000a');
select is((select count(*) from public.organization_members), 0::bigint, 'a customer sees no staff');
select is((select array_agg(slug::text) from public.organizations), array['acme-mobile'], 'a customer sees only their organization');

reset role;
set local role anon;
select throws_ok($$ select count(*) from public.organizations $$, '42501', null, 'anon cannot read organizations at all');

select * from finish();
rollback;
