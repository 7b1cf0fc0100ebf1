-- Security-definer helpers that row-level security policies call. They live in `private`
-- (not exposed through the API), fix search_path to '' and qualify every name. Policies
-- call them wrapped in a sub-select, `(select private.user_org_ids())`, so each runs once
-- per statement (an InitPlan) instead of once per row, and they return arrays so that
-- `organization_id = any (…)` can use an index. They are parallel safe (they only read
-- tables and settings, which parallel workers receive), so a policy does not stop
-- PostgreSQL from using parallel workers for large scans.

grant usage on schema private to authenticated, service_role;

create or replace function private.user_org_ids(minimum public.member_role default 'viewer')
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(m.organization_id), '{}')
  from public.organization_members m
  where m.user_id = auth.uid() and m.role >= minimum
$$;
comment on function private.user_org_ids(public.member_role) is 'Organizations in which the caller is a member with at least the given role.';
revoke all on function private.user_org_ids(public.member_role) from public;
grant execute on function private.user_org_ids(public.member_role) to authenticated, service_role;

create or replace function private.user_role(organization_id uuid)
returns public.member_role
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select m.role from public.organization_members m
  where m.organization_id = user_role.organization_id and m.user_id = auth.uid()
$$;
comment on function private.user_role(uuid) is 'The caller''s role in an organization, or null when the caller is not a member.';
revoke all on function private.user_role(uuid) from public;
grant execute on function private.user_role(uuid) to authenticated, service_role;

create or replace function private.customer_account_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.account_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_account_ids() is 'Customer accounts the caller may see as a self-service customer.';
revoke all on function private.customer_account_ids() from public;
grant execute on function private.customer_account_ids() to authenticated, service_role;

create or replace function private.customer_org_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.organization_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_org_ids() is 'Organizations in which the caller is a self-service customer.';
revoke all on function private.customer_org_ids() from public;
grant execute on function private.customer_org_ids() to authenticated, service_role;

-- Raises 42501 unless the caller holds at least `minimum` in the organization; returns the role.
create or replace function private.require_role(organization_id uuid, minimum public.member_role)
returns public.member_role
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.user_role(require_role.organization_id);
  acting_role text := coalesce(nullif(current_setting('role', true), ''), 'none');
begin
  -- Wingtel's own services act as service_role (PostgREST's service key, or
  -- DatabaseIdentity.service); a superuser session without SET ROLE is the operator's CLI.
  if acting_role = 'service_role'
     or (acting_role = 'none' and exists (select 1 from pg_catalog.pg_roles r where r.rolname = session_user and r.rolsuper)) then
    return 'owner';
  end if;
  if auth.uid() is null then
    raise exception 'not signed in' using errcode = '42501', hint = 'Call this as an authenticated user.';
  end if;
  if caller_role is null then
    raise exception 'you are not a member of organization %', require_role.organization_id using errcode = '42501';
  end if;
  if caller_role < minimum then
    raise exception 'this needs the % role or higher in the organization; you are %', minimum, caller_role
      using errcode = '42501';
  end if;
  return caller_role;
end;
$$;
comment on function private.require_role(uuid, public.member_role) is 'Guard for security-definer functions: the caller must hold at least the given role; service_role and superuser sessions pass.';
revoke all on function private.require_role(uuid, public.member_role) from public;
grant execute on function private.require_role(uuid, public.member_role) to authenticated, service_role;

create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke all on function private.touch_updated_at() from public;

create or replace function private.check_organization()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'unknown time zone "%"', new.time_zone
      using errcode = '22023', hint = 'Use an IANA name such as America/New_York or America/Chicago.';
  end if;
  return new;
end;
$$;
revoke all on function private.check_organization() from public;

create or replace trigger organizations_check before insert or update of time_zone on public.organizations
  for each row execute function private.check_organization();
create or replace trigger organization_members_touch before update on public.organization_members
  for each row execute function private.touch_updated_at();
