-- Who reads the audit trail: admins and owners all of their organization's entries,
-- agents the customer-care entries; customers and anon nothing. Nobody but the capture
-- trigger writes it, and nobody changes or removes it.

grant usage on schema audit to authenticated, service_role;
revoke all on audit.entries, audit.changes, audit.seals, audit.chain_heads from public, anon, authenticated, service_role;
grant select on audit.entries, audit.changes to authenticated, service_role;
grant select on audit.seals, audit.chain_heads to service_role;

drop policy if exists "Admins read their organization's audit; agents its customer care" on audit.entries;
create policy "Admins read their organization's audit; agents its customer care" on audit.entries
  for select to authenticated
  using (
    organization_id = any ((select private.user_org_ids('admin'))::uuid[])
    or (category = 'customer_care' and organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  );

select audit.enable('public.organizations', 'administration', org_column => 'id', key_columns => array['id']);
select audit.enable('public.organization_members', 'administration', key_columns => array['organization_id', 'user_id']);
select audit.enable('public.organization_invitations', 'administration', excluded_columns => array['token_hash']);
select audit.enable('public.customer_identities', 'customer_care', key_columns => array['organization_id', 'user_id']);
