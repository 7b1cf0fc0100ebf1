-- Who sees and changes what in the subscriber domain. Staff read their organization's rows;
-- writes follow the role rules (admins: catalog; agents: customer care; operators:
-- inventory); line state changes only through the lifecycle functions. Customers read
-- their own account, its lines, plans, usage and SIMs.

create or replace function private.customer_line_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.id), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;
comment on function private.customer_line_ids() is 'Lines of the accounts the caller is a self-service customer of.';

create or replace function private.customer_sim_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.current_sim_id) filter (where s.current_sim_id is not null), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;

create or replace function private.customer_device_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.current_device_id) filter (where s.current_device_id is not null), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;
revoke all on function private.customer_line_ids(), private.customer_sim_ids(), private.customer_device_ids() from public;
grant execute on function private.customer_line_ids(), private.customer_sim_ids(), private.customer_device_ids() to authenticated, service_role;

-- Privileges: nothing for anon; authenticated gets what policies then narrow.
revoke all on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons, public.accounts, public.sim_cards,
  public.devices, public.subscribers, public.subscriptions, public.subscriber_add_ons, public.port_requests, public.notes,
  public.carrier_commands, public.subscriber_events from anon, authenticated;
grant select, insert, update, delete on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons,
  public.sim_cards, public.devices, public.notes to authenticated;
grant select, insert, update on public.accounts to authenticated;
grant delete on public.accounts to authenticated;
grant select on public.subscribers, public.subscriptions, public.subscriber_add_ons, public.carrier_commands,
  public.subscriber_events to authenticated;
grant update (tags, external_id) on public.subscribers to authenticated;
-- Port secrets: every column but account_number and pin.
grant select (organization_id, id, subscriber_id, direction, mdn, other_carrier, status, rejection_reason, requested_at, completed_at)
  on public.port_requests to authenticated;
grant all on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons, public.accounts, public.sim_cards,
  public.devices, public.subscribers, public.subscriptions, public.subscriber_add_ons, public.port_requests, public.notes,
  public.carrier_commands, public.subscriber_events to service_role;

-- Catalog: staff read; admins manage; customers see what is on sale.
drop policy if exists "Members can view their carriers" on public.carriers;
create policy "Members can view their carriers" on public.carriers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage carriers" on public.carriers;
create policy "Admins manage carriers" on public.carriers for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members can view carrier rate plans" on public.carrier_rate_plans;
create policy "Members can view carrier rate plans" on public.carrier_rate_plans for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage carrier rate plans" on public.carrier_rate_plans;
create policy "Admins manage carrier rate plans" on public.carrier_rate_plans for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and customers can view plans" on public.plans;
create policy "Members and customers can view plans" on public.plans for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[])
         or (status = 'active' and organization_id = any ((select private.customer_org_ids())::uuid[])));
drop policy if exists "Admins manage plans" on public.plans;
create policy "Admins manage plans" on public.plans for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and customers can view add-ons" on public.add_ons;
create policy "Members and customers can view add-ons" on public.add_ons for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[])
         or (active and organization_id = any ((select private.customer_org_ids())::uuid[])));
drop policy if exists "Admins manage add-ons" on public.add_ons;
create policy "Admins manage add-ons" on public.add_ons for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

-- Accounts: staff read, agents write, admins delete; customers read their own.
drop policy if exists "Members and the customer can view accounts" on public.accounts;
create policy "Members and the customer can view accounts" on public.accounts for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents can add accounts" on public.accounts;
create policy "Agents can add accounts" on public.accounts for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Agents can edit accounts" on public.accounts;
create policy "Agents can edit accounts" on public.accounts for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Admins can delete accounts" on public.accounts;
create policy "Admins can delete accounts" on public.accounts for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

-- Inventory: staff read; operators manage SIMs; agents record devices (BYOD); customers see theirs.
drop policy if exists "Members and the customer can view SIMs" on public.sim_cards;
create policy "Members and the customer can view SIMs" on public.sim_cards for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_sim_ids())::uuid[]));
drop policy if exists "Operators manage SIM inventory" on public.sim_cards;
create policy "Operators manage SIM inventory" on public.sim_cards for all to authenticated
  using (organization_id = any ((select private.user_org_ids('operator'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('operator'))::uuid[]));

drop policy if exists "Members and the customer can view devices" on public.devices;
create policy "Members and the customer can view devices" on public.devices for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_device_ids())::uuid[]));
drop policy if exists "Agents manage devices" on public.devices;
create policy "Agents manage devices" on public.devices for all to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

-- Lines and what hangs off them: read by staff and the line's customer; written by functions.
drop policy if exists "Members and the customer can view lines" on public.subscribers;
create policy "Members and the customer can view lines" on public.subscribers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents can tag lines" on public.subscribers;
create policy "Agents can tag lines" on public.subscribers for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

drop policy if exists "Members and the customer can view subscriptions" on public.subscriptions;
create policy "Members and the customer can view subscriptions" on public.subscriptions for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members and the customer can view line add-ons" on public.subscriber_add_ons;
create policy "Members and the customer can view line add-ons" on public.subscriber_add_ons for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members and the customer can view ports" on public.port_requests;
create policy "Members and the customer can view ports" on public.port_requests for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members can view carrier commands" on public.carrier_commands;
create policy "Members can view carrier commands" on public.carrier_commands for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members can view line events" on public.subscriber_events;
create policy "Members can view line events" on public.subscriber_events for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

-- Notes: staff only; agents write their own; admins tidy up.
drop policy if exists "Members can view notes" on public.notes;
create policy "Members can view notes" on public.notes for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Agents write notes as themselves" on public.notes;
create policy "Agents write notes as themselves" on public.notes for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and author_id = (select auth.uid()));
drop policy if exists "Authors and admins edit notes" on public.notes;
create policy "Authors and admins edit notes" on public.notes for update to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[])
         or (author_id = (select auth.uid()) and organization_id = any ((select private.user_org_ids('agent'))::uuid[])))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Authors and admins delete notes" on public.notes;
create policy "Authors and admins delete notes" on public.notes for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[])
         or (author_id = (select auth.uid()) and organization_id = any ((select private.user_org_ids('agent'))::uuid[])));
