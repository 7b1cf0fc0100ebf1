-- The migration's reconciliation: every source row accounted for (migrated, skipped with the
-- reasons, rejected), per entity, and counts per status and per plan in the file and in
-- Wingtel after the migration.

create or replace function public.migration_summary_report(organization_id uuid, batch_id uuid default null)
returns table (section text, item text, in_file bigint, migrated bigint, skipped bigint, rejected bigint, in_wingtel bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  org uuid := migration_summary_report.organization_id;
  batch uuid := migration_summary_report.batch_id;
begin
  perform private.require_role(org, 'analyst');
  if batch is null then
    select b.id into batch from public.import_batches b
    where b.organization_id = org order by b.migrated_at desc nulls last, b.imported_at desc limit 1;
  end if;
  if batch is null or not exists (select 1 from public.import_batches b where b.organization_id = org and b.id = batch) then
    raise exception 'organization % has no import batch%', org, coalesce(' ' || batch::text, '') using errcode = 'P0002',
      hint = 'Load an export first: wingtel import bequick FILE --org SLUG';
  end if;

  return query
  with r as (
    select x.*, m.line_status, s.status as wingtel_status, s.account_id, s.current_sim_id, s.current_device_id,
      (select p.name from public.subscriptions u join public.plans p on p.organization_id = u.organization_id and p.id = u.plan_id
       where u.organization_id = org and u.subscriber_id = s.id order by lower(u.effective) desc limit 1) as wingtel_plan,
      x.outcome in ('created', 'updated', 'unchanged') as ok
    from public.import_rows x
    left join public.import_status_map m on m.source_status = lower(btrim(x.status))
    left join public.subscribers s on s.organization_id = org and s.id = x.subscriber_id
    where x.organization_id = org and x.batch_id = batch
  )
  -- Rows: source = migrated + skipped + rejected (the check column is zero when they add up).
  select 'rows', 'all', count(*), count(*) filter (where ok), count(*) filter (where outcome = 'skipped'),
    count(*) filter (where outcome = 'rejected'),
    count(*) - count(*) filter (where ok) - count(*) filter (where outcome = 'skipped') - count(*) filter (where outcome = 'rejected')
  from r
  union all
  select 'rows', o::text, count(r.*), count(r.*), 0, 0, null from unnest(array['created', 'updated', 'unchanged']::public.import_outcome[]) o
    left join r on r.outcome = o group by o
  union all
  select 'entities', 'accounts', count(distinct coalesce(nullif(btrim(account_ref), ''), nullif(btrim(subscriber_ref), ''))),
    count(distinct account_id) filter (where ok),
    count(distinct coalesce(nullif(btrim(account_ref), ''), nullif(btrim(subscriber_ref), ''))) filter (where outcome = 'skipped'), null,
    (select count(*) from public.accounts a where a.organization_id = org)
  from r
  union all
  select 'entities', 'subscribers', count(distinct nullif(btrim(subscriber_ref), '')), count(distinct subscriber_id) filter (where ok),
    count(*) filter (where outcome = 'skipped'), count(*) filter (where outcome = 'rejected'),
    (select count(*) from public.subscribers s where s.organization_id = org)
  from r
  union all
  select 'entities', 'sim_cards', count(distinct nullif(regexp_replace(iccid, '\s', '', 'g'), '')), count(distinct current_sim_id) filter (where ok),
    count(distinct nullif(regexp_replace(iccid, '\s', '', 'g'), '')) filter (where outcome = 'skipped'), null,
    (select count(*) from public.sim_cards c where c.organization_id = org)
  from r
  union all
  select 'entities', 'devices', count(distinct nullif(regexp_replace(imei, '\s', '', 'g'), '')), count(distinct current_device_id) filter (where ok),
    count(distinct nullif(regexp_replace(imei, '\s', '', 'g'), '')) filter (where outcome = 'skipped'), null,
    (select count(*) from public.devices d where d.organization_id = org)
  from r
  union all
  -- Per status: as mapped from the file, and the migrated lines' status in Wingtel now.
  select 'status', coalesce(q.status, '(unknown)'), sum(q.in_file)::bigint, sum(q.migrated)::bigint, sum(q.skipped)::bigint,
    sum(q.rejected)::bigint, sum(q.in_wingtel)::bigint
  from (
    select line_status::text as status, 1 as in_file, ok::int as migrated, (outcome = 'skipped')::int as skipped,
      (outcome = 'rejected')::int as rejected, 0 as in_wingtel from r
    union all
    select wingtel_status::text, 0, 0, 0, 0, 1 from r where ok
  ) q group by q.status
  union all
  select 'plan', coalesce(q.plan, '(none)'), sum(q.in_file)::bigint, sum(q.migrated)::bigint, sum(q.skipped)::bigint,
    sum(q.rejected)::bigint, sum(q.in_wingtel)::bigint
  from (
    select nullif(btrim(plan_name), '') as plan, 1 as in_file, ok::int as migrated, (outcome = 'skipped')::int as skipped,
      (outcome = 'rejected')::int as rejected, 0 as in_wingtel from r
    union all
    select wingtel_plan, 0, 0, 0, 0, 1 from r where ok
  ) q group by q.plan
  union all
  select 'issues', i.issue_type || ' (' || i.severity || ')', count(*), null, count(distinct i.line_number), null, null
  from public.import_issues i where i.organization_id = org and i.batch_id = batch
  group by i.issue_type, i.severity
  order by 1, 2;
end;
$$;
comment on function public.migration_summary_report(uuid, uuid) is 'Reconciliation of an import batch (the latest migrated one by default): rows in the file = migrated + skipped + rejected (row "rows/all", last column 0 when it adds up); per entity, status and plan the counts in the file, migrated, skipped and in Wingtel; the issues by kind.';
revoke all on function public.migration_summary_report(uuid, uuid) from public, anon;
grant execute on function public.migration_summary_report(uuid, uuid) to authenticated, service_role;
