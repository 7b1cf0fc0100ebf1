-- Who sees migrations: admins of the organization read batches, staged rows and issues (the
-- rows carry customer details); only the import functions and the service role write them.

revoke all on public.import_batches, public.import_rows, public.import_issues, public.import_status_map from anon, authenticated;
grant select on public.import_batches, public.import_rows, public.import_issues, public.import_status_map to authenticated;
grant all on public.import_batches, public.import_rows, public.import_issues, public.import_status_map to service_role;

drop policy if exists "Admins can view import batches" on public.import_batches;
create policy "Admins can view import batches" on public.import_batches for select to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));
drop policy if exists "Admins can view staged rows" on public.import_rows;
create policy "Admins can view staged rows" on public.import_rows for select to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));
drop policy if exists "Admins can view import issues" on public.import_issues;
create policy "Admins can view import issues" on public.import_issues for select to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));
drop policy if exists "Everyone signed in can read the status map" on public.import_status_map;
create policy "Everyone signed in can read the status map" on public.import_status_map for select to authenticated
  using (true);

select audit.enable('public.import_batches', 'operations');
