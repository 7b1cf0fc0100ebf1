-- Organizations and their staff. These functions are the only way to change membership;
-- each checks the caller's own role. Errors: 42501 for permission, P0002 for something
-- that does not exist, P0001 for a business rule, 23505 for a duplicate.

create or replace function public.create_organization(
  slug text,
  name text,
  currency text default 'USD',
  time_zone text default 'America/New_York'
)
returns public.organizations
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  created public.organizations;
begin
  if caller is null then
    raise exception 'sign in to create an organization' using errcode = '42501';
  end if;
  begin
    insert into public.organizations (slug, name, currency, time_zone, created_by)
    values (lower(create_organization.slug), create_organization.name, upper(create_organization.currency),
            create_organization.time_zone, caller)
    returning * into created;
  exception when unique_violation then
    raise exception 'the organization slug "%" is taken', create_organization.slug
      using errcode = '23505', hint = 'Choose another slug.';
  end;
  insert into public.organization_members (organization_id, user_id, role) values (created.id, caller, 'owner');
  return created;
end;
$$;
comment on function public.create_organization(text, text, text, text) is 'Creates an organization; the caller becomes its owner.';
revoke all on function public.create_organization(text, text, text, text) from public, anon;
grant execute on function public.create_organization(text, text, text, text) to authenticated, service_role;

create or replace function public.add_organization_member(organization_id uuid, user_id uuid, role public.member_role)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(add_organization_member.organization_id, 'admin');
  added public.organization_members;
begin
  if add_organization_member.role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can make another owner' using errcode = '42501';
  end if;
  if not exists (select 1 from auth.users u where u.id = add_organization_member.user_id) then
    raise exception 'there is no user %', add_organization_member.user_id using errcode = 'P0002';
  end if;
  insert into public.organization_members (organization_id, user_id, role, invited_by)
  values (add_organization_member.organization_id, add_organization_member.user_id, add_organization_member.role, auth.uid())
  on conflict on constraint organization_members_pkey do nothing
  returning * into added;
  if added is null then
    raise exception 'user % is already a member', add_organization_member.user_id
      using errcode = '23505', hint = 'Use change_member_role to change their role.';
  end if;
  return added;
end;
$$;
comment on function public.add_organization_member(uuid, uuid, public.member_role) is 'Adds an existing user as staff. Admins and owners may; only an owner may add an owner.';
revoke all on function public.add_organization_member(uuid, uuid, public.member_role) from public, anon;
grant execute on function public.add_organization_member(uuid, uuid, public.member_role) to authenticated, service_role;

create or replace function public.change_member_role(organization_id uuid, user_id uuid, role public.member_role)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(change_member_role.organization_id, 'admin');
  current_role_of_member public.member_role;
  owners bigint;
  changed public.organization_members;
begin
  -- Lock the organization's owners so two owners cannot demote each other at once.
  select count(*) into owners from (
    select 1 from public.organization_members m
    where m.organization_id = change_member_role.organization_id and m.role = 'owner' for update) o;
  select m.role into current_role_of_member from public.organization_members m
   where m.organization_id = change_member_role.organization_id and m.user_id = change_member_role.user_id for update;
  if current_role_of_member is null then
    raise exception 'user % is not a member of organization %', change_member_role.user_id, change_member_role.organization_id
      using errcode = 'P0002';
  end if;
  if (change_member_role.role = 'owner' or current_role_of_member = 'owner') and caller_role <> 'owner' then
    raise exception 'only an owner can grant or take away the owner role' using errcode = '42501';
  end if;
  if current_role_of_member = 'owner' and change_member_role.role <> 'owner' and owners = 1 then
    raise exception 'the last owner cannot be demoted' using errcode = 'P0001', hint = 'Make another member owner first.';
  end if;
  update public.organization_members m set role = change_member_role.role
   where m.organization_id = change_member_role.organization_id and m.user_id = change_member_role.user_id
  returning * into changed;
  return changed;
end;
$$;
comment on function public.change_member_role(uuid, uuid, public.member_role) is 'Changes a member''s role. Admins and owners may; only owners touch the owner role; the last owner stays.';
revoke all on function public.change_member_role(uuid, uuid, public.member_role) from public, anon;
grant execute on function public.change_member_role(uuid, uuid, public.member_role) to authenticated, service_role;

create or replace function public.remove_organization_member(organization_id uuid, user_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  leaving_self boolean := remove_organization_member.user_id = auth.uid();
  caller_role public.member_role := private.require_role(
    remove_organization_member.organization_id, case when leaving_self then 'viewer'::public.member_role else 'admin' end);
  target_role public.member_role;
  owners bigint;
begin
  select count(*) into owners from (
    select 1 from public.organization_members m
    where m.organization_id = remove_organization_member.organization_id and m.role = 'owner' for update) o;
  select m.role into target_role from public.organization_members m
   where m.organization_id = remove_organization_member.organization_id and m.user_id = remove_organization_member.user_id for update;
  if target_role is null then
    raise exception 'user % is not a member of organization %', remove_organization_member.user_id, remove_organization_member.organization_id
      using errcode = 'P0002';
  end if;
  if target_role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can remove an owner' using errcode = '42501';
  end if;
  if target_role = 'owner' and owners = 1 then
    raise exception 'the last owner cannot leave the organization' using errcode = 'P0001',
      hint = 'Make another member owner first.';
  end if;
  delete from public.organization_members m
   where m.organization_id = remove_organization_member.organization_id and m.user_id = remove_organization_member.user_id;
end;
$$;
comment on function public.remove_organization_member(uuid, uuid) is 'Removes a member (admins and owners), or lets a member leave. The last owner cannot leave.';
revoke all on function public.remove_organization_member(uuid, uuid) from public, anon;
grant execute on function public.remove_organization_member(uuid, uuid) to authenticated, service_role;

create or replace function public.invite_member(organization_id uuid, email text, role public.member_role)
returns table (invitation_id uuid, token text, expires_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(invite_member.organization_id, 'admin');
  secret text := encode(pg_catalog.sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
  created public.organization_invitations;
begin
  if invite_member.role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can invite an owner' using errcode = '42501';
  end if;
  begin
    insert into public.organization_invitations (organization_id, email, role, token_hash, invited_by)
    values (invite_member.organization_id, invite_member.email, invite_member.role,
            pg_catalog.sha256(convert_to(secret, 'UTF8')), auth.uid())
    returning * into created;
  exception when unique_violation then
    raise exception 'an invitation to % is already open', invite_member.email
      using errcode = '23505', hint = 'Revoke it first (revoke_invitation) to send a new one.';
  when check_violation then
    raise exception '"%" is not an email address', invite_member.email using errcode = '22023';
  end;
  return query select created.id, secret, created.expires_at;
end;
$$;
comment on function public.invite_member(uuid, text, public.member_role) is 'Invites someone by email. Returns the token once (only its hash is stored); it expires after 7 days.';
revoke all on function public.invite_member(uuid, text, public.member_role) from public, anon;
grant execute on function public.invite_member(uuid, text, public.member_role) to authenticated, service_role;

create or replace function public.accept_invitation(token text)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  caller_email text;
  invitation public.organization_invitations;
  joined public.organization_members;
begin
  if caller is null then
    raise exception 'sign in to accept an invitation' using errcode = '42501';
  end if;
  select i.* into invitation from public.organization_invitations i
   where i.token_hash = pg_catalog.sha256(convert_to(accept_invitation.token, 'UTF8')) for update;
  if invitation.id is null then
    raise exception 'invitation not found' using errcode = 'P0002', hint = 'Check the link, or ask for a new invitation.';
  end if;
  if invitation.revoked_at is not null then
    raise exception 'this invitation was revoked' using errcode = 'P0001';
  end if;
  if invitation.accepted_at is not null then
    raise exception 'this invitation was already used' using errcode = 'P0001';
  end if;
  if invitation.expires_at <= now() then
    raise exception 'this invitation expired on %', invitation.expires_at using errcode = 'P0001', hint = 'Ask for a new invitation.';
  end if;
  select u.email into caller_email from auth.users u where u.id = caller;
  if caller_email is null or lower(caller_email) <> lower(invitation.email::text) then
    raise exception 'this invitation is for another email address' using errcode = '42501';
  end if;
  insert into public.organization_members as m (organization_id, user_id, role, invited_by)
  values (invitation.organization_id, caller, invitation.role, invitation.invited_by)
  on conflict on constraint organization_members_pkey
    do update set role = greatest(m.role, excluded.role)
  returning * into joined;
  update public.organization_invitations i set accepted_at = now(), accepted_by = caller
   where i.organization_id = invitation.organization_id and i.id = invitation.id;
  return joined;
end;
$$;
comment on function public.accept_invitation(text) is 'Joins the organization an invitation is for; the caller''s email must be the invited one.';
revoke all on function public.accept_invitation(text) from public, anon;
grant execute on function public.accept_invitation(text) to authenticated, service_role;

create or replace function public.revoke_invitation(organization_id uuid, invitation_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(revoke_invitation.organization_id, 'admin');
  update public.organization_invitations i set revoked_at = now()
   where i.organization_id = revoke_invitation.organization_id and i.id = revoke_invitation.invitation_id
     and i.accepted_at is null and i.revoked_at is null;
  if not found then
    raise exception 'no open invitation % in organization %', revoke_invitation.invitation_id, revoke_invitation.organization_id
      using errcode = 'P0002';
  end if;
end;
$$;
comment on function public.revoke_invitation(uuid, uuid) is 'Cancels an open invitation (admins and owners).';
revoke all on function public.revoke_invitation(uuid, uuid) from public, anon;
grant execute on function public.revoke_invitation(uuid, uuid) to authenticated, service_role;

create or replace function public.link_customer(organization_id uuid, user_id uuid, account_id uuid)
returns public.customer_identities
language plpgsql
security definer
set search_path = ''
as $$
declare
  linked public.customer_identities;
begin
  perform private.require_role(link_customer.organization_id, 'agent');
  if not exists (select 1 from auth.users u where u.id = link_customer.user_id) then
    raise exception 'there is no user %', link_customer.user_id using errcode = 'P0002';
  end if;
  insert into public.customer_identities as c (organization_id, user_id, account_id, created_by)
  values (link_customer.organization_id, link_customer.user_id, link_customer.account_id, auth.uid())
  on conflict on constraint customer_identities_pkey do update set account_id = excluded.account_id
  returning * into linked;
  return linked;
end;
$$;
comment on function public.link_customer(uuid, uuid, uuid) is 'Gives a login self-service access to one customer account (agents and above).';
revoke all on function public.link_customer(uuid, uuid, uuid) from public, anon;
grant execute on function public.link_customer(uuid, uuid, uuid) to authenticated, service_role;

create or replace function public.unlink_customer(organization_id uuid, user_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(unlink_customer.organization_id, 'agent');
  delete from public.customer_identities c
   where c.organization_id = unlink_customer.organization_id and c.user_id = unlink_customer.user_id;
  if not found then
    raise exception 'user % has no customer access in organization %', unlink_customer.user_id, unlink_customer.organization_id
      using errcode = 'P0002';
  end if;
end;
$$;
comment on function public.unlink_customer(uuid, uuid) is 'Removes a login''s self-service access (agents and above).';
revoke all on function public.unlink_customer(uuid, uuid) from public, anon;
grant execute on function public.unlink_customer(uuid, uuid) to authenticated, service_role;
