-- The scheduler of `wingtel serve` (Sources/WingtelFunctions/Outbox/Scheduler.swift). Every
-- few minutes it asks which jobs are due and runs each in a transaction of its own:
--   bill_run       run_bill_cycle for the organization's current month: bills the accounts whose
--                  billing day has come (a re-run changes nothing), daily from 02:00 local time;
--   autopay        queue_autopay_charges: charges of the autopay accounts' issued invoices and the
--                  retries due after declines, daily from 02:00 (after the bill run);
--   dunning        run_dunning, daily from 06:00 local time (after the bill run);
--   plan_changes   apply_scheduled_plan_changes (downgrades whose period started), every tick.
-- A daily job is claimed once per organization and local day (private.job_runs): with several
-- servers, one runs it. A failed job keeps its error and is tried again ten minutes later.
-- On Supabase without `wingtel serve`, pg_cron can call the same functions (docs/API.md).

create or replace function public.claim_scheduled_jobs(as_of timestamptz default now())
returns table (job text, organization_id uuid, run_on date)
language sql
security definer
set search_path = ''
as $$
  insert into private.job_runs as r (job, organization_id, run_on)
  select j.job, o.id, (claim_scheduled_jobs.as_of at time zone o.time_zone)::date
  from public.organizations o
  cross join (values ('bill_run', time '02:00'), ('autopay', time '02:00'), ('dunning', time '06:00')) as j (job, not_before)
  where (claim_scheduled_jobs.as_of at time zone o.time_zone)::time >= j.not_before
  -- A job that failed is tried again after ten minutes; one whose server died (claimed, never
  -- finished) after two hours.
  on conflict on constraint job_runs_pkey do update
     set started_at = now(), finished_at = null, outcome = null, result = null
   where (r.outcome = 'failed' and r.finished_at < now() - interval '10 minutes')
      or (r.outcome is null and r.started_at < now() - interval '2 hours')
  returning r.job, r.organization_id, r.run_on
$$;
comment on function public.claim_scheduled_jobs(timestamptz) is 'The daily jobs due now that no server has claimed yet for the organization''s local day; claims them (services only).';

create or replace function public.run_scheduled_job(job text, organization_id uuid, run_on date, as_of timestamptz default now())
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  job_result jsonb;
begin
  perform set_config('wingtel.actor', 'scheduler', true);
  case run_scheduled_job.job
    when 'bill_run' then
      select to_jsonb(r) into job_result
      from public.run_bill_cycle(run_scheduled_job.organization_id, date_trunc('month', run_scheduled_job.run_on)::date, run_scheduled_job.as_of) r;
    when 'autopay' then
      job_result := jsonb_build_object('charges_queued',
        public.queue_autopay_charges(run_scheduled_job.organization_id, run_scheduled_job.as_of));
    when 'dunning' then
      select coalesce(jsonb_object_agg(d.step, d.invoices), '{}') into job_result
      from public.run_dunning(run_scheduled_job.organization_id, run_scheduled_job.as_of) d;
    else
      raise exception 'unknown scheduled job %', run_scheduled_job.job using errcode = '22023';
  end case;
  update private.job_runs r set finished_at = now(), outcome = 'succeeded', result = job_result
   where r.job = run_scheduled_job.job and r.organization_id = run_scheduled_job.organization_id and r.run_on = run_scheduled_job.run_on;
  return job_result;
end;
$$;
comment on function public.run_scheduled_job(text, uuid, date, timestamptz) is 'Runs one claimed daily job (bill_run, autopay, dunning) as the scheduler and records its result; on error nothing of it stays (the scheduler then calls fail_scheduled_job).';

create or replace function public.fail_scheduled_job(job text, organization_id uuid, run_on date, error text)
returns void
language sql
security definer
set search_path = ''
as $$
  update private.job_runs r set finished_at = now(), outcome = 'failed', result = jsonb_build_object('error', fail_scheduled_job.error)
   where r.job = fail_scheduled_job.job and r.organization_id = fail_scheduled_job.organization_id and r.run_on = fail_scheduled_job.run_on
$$;
comment on function public.fail_scheduled_job(text, uuid, date, text) is 'Records that a claimed job failed, with the error; it is claimed again after ten minutes.';

create or replace view public.scheduled_job_runs with (security_barrier) as
select r.organization_id, r.job, r.run_on, r.started_at, r.finished_at, r.outcome, r.result
from private.job_runs r
where r.organization_id = any ((select private.user_org_ids('operator'))::uuid[])
   or coalesce(nullif(current_setting('role', true), ''), 'none') = 'service_role';
comment on view public.scheduled_job_runs is 'Daily scheduled jobs of the caller''s organizations (operators and up): when each ran and what it did.';

revoke all on function public.claim_scheduled_jobs(timestamptz), public.run_scheduled_job(text, uuid, date, timestamptz),
  public.fail_scheduled_job(text, uuid, date, text) from public, anon, authenticated;
grant execute on function public.claim_scheduled_jobs(timestamptz), public.run_scheduled_job(text, uuid, date, timestamptz),
  public.fail_scheduled_job(text, uuid, date, text) to service_role;
revoke all on public.scheduled_job_runs from public, anon;
grant select on public.scheduled_job_runs to authenticated, service_role;
