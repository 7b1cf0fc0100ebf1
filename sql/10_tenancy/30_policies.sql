-- Row-level security for the tenancy tables. Reads are granted by policy; writes to
-- memberships, invitations and customer links go through the functions in 20_members.sql
-- (no write policy, so direct writes are refused). service_role bypasses RLS, as on Supabase.

revoke all on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities from anon;
revoke insert, update, delete, truncate, references, trigger on public.organizations, public.organization_members,
  public.organization_invitations, public.customer_identities from authenticated;
grant select on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities to authenticated;
-- Admins may rename and configure their organization, never change its id or slug.
grant update (name, currency, time_zone, settings) on public.organizations to authenticated;
grant delete on public.organizations to authenticated;
grant all on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities to service_role;

drop policy if exists "Members and customers can view their organizations" on public.organizations;
create policy "Members and customers can view their organizations" on public.organizations
  for select to authenticated
  using (id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_org_ids())::uuid[]));

drop policy if exists "Admins can update their organization" on public.organizations;
create policy "Admins can update their organization" on public.organizations
  for update to authenticated
  using (id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Owners can delete their organization" on public.organizations;
create policy "Owners can delete their organization" on public.organizations
  for delete to authenticated
  using (id = any ((select private.user_org_ids('owner'))::uuid[]));

drop policy if exists "Members can view their organization's members" on public.organization_members;
create policy "Members can view their organization's members" on public.organization_members
  for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Admins can view their organization's invitations" on public.organization_invitations;
create policy "Admins can view their organization's invitations" on public.organization_invitations
  for select to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Customers see their own link; agents see their organization's" on public.customer_identities;
create policy "Customers see their own link; agents see their organization's" on public.customer_identities
  for select to authenticated
  using (user_id = (select auth.uid()) or organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
