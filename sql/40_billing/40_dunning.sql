-- Dunning: what happens to an invoice that is not paid, by the organization's policy
-- (billing_policies). run_dunning is the scheduled job (the server's scheduler calls it; on
-- Supabase pg_cron can, see docs/BILLING.md). For each unpaid invoice, by days past due_on:
--   reminder      on the policy's reminder days (the latest day reached, once each);
--   past_due      after past_due_after_days: the invoice becomes past_due;
--   suspended     after suspend_after_days: every active line of the account is suspended for
--                 non-payment through the lifecycle functions (so the carrier is told), the
--                 account becomes suspended; lines the carrier rules refuse are retried next run;
--   written_off   after write_off_after_days: what is owed goes to bad debt.
-- Paying (record_payment, a credit note, a wallet top-up) restores the lines at once when
-- nothing that caused the suspension is still owed; run_dunning also checks.

create or replace function private.restore_if_paid(organization_id uuid, account_id uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  org uuid := restore_if_paid.organization_id;
  line record;
  restored integer := 0;
  failures jsonb := '[]';
begin
  if not exists (select 1 from public.accounts a where a.organization_id = org and a.id = restore_if_paid.account_id and a.status = 'suspended')
     or not exists (select 1 from public.dunning_events e where e.organization_id = org and e.account_id = restore_if_paid.account_id
                     and e.step = 'suspended')
     or exists (select 1 from public.invoices i
                where i.organization_id = org and i.account_id = restore_if_paid.account_id and i.status in ('past_due', 'written_off')
                  and exists (select 1 from public.dunning_events e where e.organization_id = org and e.invoice_id = i.id and e.step = 'suspended')) then
    return null;
  end if;
  for line in
    select l.id from public.subscribers l
    where l.organization_id = org and l.account_id = restore_if_paid.account_id and l.status = 'suspended' and l.suspend_reason = 'non_payment'
    order by l.id
  loop
    begin
      perform private.restore_line(org, line.id);
      restored := restored + 1;
    exception when others then
      failures := failures || jsonb_build_object('subscriber_id', line.id, 'error', sqlerrm);
    end;
  end loop;
  -- Lines the carrier rules refuse now (say, a command still open) keep the account suspended,
  -- so the next dunning run tries again.
  if jsonb_array_length(failures) = 0 then
    update public.accounts a set status = 'active', updated_at = now()
     where a.organization_id = org and a.id = restore_if_paid.account_id;
  end if;
  insert into public.dunning_events (organization_id, account_id, step, days_overdue, details)
  values (org, restore_if_paid.account_id, 'restored', 0, jsonb_build_object('lines_restored', restored, 'failures', failures));
  return restored;
end;
$$;
comment on function private.restore_if_paid(uuid, uuid) is 'Restores an account suspended by dunning, and its lines suspended for non-payment, once every invoice that caused the suspension is settled. Returns the lines restored, or null when the account is not due a restore.';

create or replace function public.run_dunning(organization_id uuid, as_of timestamptz default now())
returns table (step public.dunning_step, invoices integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := run_dunning.organization_id;
  policy public.billing_policies;
  today date;
  target record;
  line record;
  failures jsonb;
  suspended_lines integer;
  counts jsonb := '{}';
  n integer;
begin
  perform private.require_role(org, 'operator');
  insert into public.billing_policies (organization_id) values (org) on conflict do nothing;
  select p.* into policy from public.billing_policies p where p.organization_id = org;
  if not policy.dunning_enabled then
    return;
  end if;
  select (run_dunning.as_of at time zone o.time_zone)::date into today from public.organizations o where o.id = org;
  -- One dunning run per organization at a time.
  perform pg_advisory_xact_lock(hashtext('wingtel.dunning'), hashtext(org::text));

  -- Past due.
  with changed as (
    update public.invoices i set status = 'past_due', updated_at = now()
     where i.organization_id = org and i.status = 'open' and i.due_on + policy.past_due_after_days <= today
       and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
    returning i.id, i.account_id, i.due_on
  ), logged as (
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, c.account_id, c.id, 'past_due', policy.past_due_after_days, run_dunning.as_of, jsonb_build_object('due_on', c.due_on)
    from changed c
    on conflict do nothing
    returning 1
  )
  select count(*) into n from logged;
  counts := counts || jsonb_build_object('past_due', n);

  -- Reminders: the latest reminder day reached, once.
  with reached as (
    select i.id, i.account_id, max(r.day) as day,
           i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as outstanding
    from public.invoices i cross join unnest(policy.reminder_days) as r (day)
    where i.organization_id = org and i.status in ('open', 'past_due') and today - i.due_on >= r.day
      and i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents > 0
    group by i.organization_id, i.id
  ), logged as (
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, r.account_id, r.id, 'reminder', r.day, run_dunning.as_of, jsonb_build_object('outstanding_cents', r.outstanding)
    from reached r
    on conflict do nothing
    returning 1
  )
  select count(*) into n from logged;
  counts := counts || jsonb_build_object('reminder', n);

  -- Suspension for non-payment, through the lifecycle (the carrier is told).
  n := 0;
  for target in
    select i.account_id, array_agg(i.id) as invoice_ids
    from public.invoices i
    where i.organization_id = org and i.status = 'past_due' and today - i.due_on >= policy.suspend_after_days
    group by i.account_id order by i.account_id
  loop
    failures := '[]';
    suspended_lines := 0;
    for line in
      select l.id from public.subscribers l
      where l.organization_id = org and l.account_id = target.account_id and l.status = 'active'
      order by l.id
    loop
      begin
        perform private.suspend_line(org, line.id, 'non_payment');
        suspended_lines := suspended_lines + 1;
      exception when others then
        failures := failures || jsonb_build_object('subscriber_id', line.id, 'error', sqlerrm);
      end;
    end loop;
    update public.accounts a set status = 'suspended', updated_at = now()
     where a.organization_id = org and a.id = target.account_id and a.status = 'active';
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at, details)
    select org, target.account_id, v.id, 'suspended', policy.suspend_after_days, run_dunning.as_of,
           jsonb_build_object('lines_suspended', suspended_lines, 'failures', failures)
    from unnest(target.invoice_ids) as v (id)
    on conflict do nothing;
    get diagnostics suspended_lines = row_count;
    n := n + suspended_lines;
  end loop;
  counts := counts || jsonb_build_object('suspended', n);

  -- Write-off at the end of the policy.
  n := 0;
  for target in
    select i.id, i.account_id from public.invoices i
    where i.organization_id = org and i.status = 'past_due' and today - i.due_on >= policy.write_off_after_days
    order by i.number
  loop
    perform private.write_off(org, target.id, 'dunning');
    insert into public.dunning_events (organization_id, account_id, invoice_id, step, days_overdue, occurred_at)
    values (org, target.account_id, target.id, 'written_off', policy.write_off_after_days, run_dunning.as_of);
    n := n + 1;
  end loop;
  counts := counts || jsonb_build_object('written_off', n);

  -- Restore accounts whose suspension has been paid (payments normally restore at once).
  n := 0;
  for target in
    select a.id from public.accounts a where a.organization_id = org and a.status = 'suspended'
      and exists (select 1 from public.dunning_events e where e.organization_id = org and e.account_id = a.id and e.step = 'suspended')
  loop
    if private.restore_if_paid(org, target.id) is not null then
      n := n + 1;
    end if;
  end loop;
  counts := counts || jsonb_build_object('restored', n);

  return query select s.step, coalesce((counts ->> s.step::text)::integer, 0)
               from unnest(enum_range(null::public.dunning_step)) as s (step);
end;
$$;
comment on function public.run_dunning(uuid, timestamptz) is 'The dunning job for one organization (operators, services, the scheduler): reminders, past due, suspension for non-payment through the lifecycle, write-off, and restore of paid accounts, by the organization''s billing policy. Returns how many invoices (accounts for restored) each step touched.';
revoke all on function private.restore_if_paid(uuid, uuid) from public;
revoke all on function public.run_dunning(uuid, timestamptz) from public, anon;
grant execute on function public.run_dunning(uuid, timestamptz) to authenticated, service_role;
