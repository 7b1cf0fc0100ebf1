-- Who reads usage: staff of the organization, and customers their own lines' usage. Nobody
-- writes it but ingest_usage. Usage rows are not audited one by one (their batch is).

revoke all on public.usage_batches, public.usage_records, public.usage_quarantine, public.usage_daily from anon, authenticated;
grant select on public.usage_batches, public.usage_records, public.usage_quarantine, public.usage_daily to authenticated;
grant all on public.usage_batches, public.usage_records, public.usage_quarantine, public.usage_daily to service_role;

drop policy if exists "Members can view usage batches" on public.usage_batches;
create policy "Members can view usage batches" on public.usage_batches for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members can view quarantined usage" on public.usage_quarantine;
create policy "Members can view quarantined usage" on public.usage_quarantine for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members and the customer can view usage" on public.usage_records;
create policy "Members and the customer can view usage" on public.usage_records for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members and the customer can view daily usage" on public.usage_daily;
create policy "Members and the customer can view daily usage" on public.usage_daily for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

select audit.enable('public.usage_batches', 'operations');
