-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/30_usage/10_ingest.sql (sha256 9f69b058ca7b25dbacaa23f30e6be9b3b9f96e85efa8dedc47698e41fa24e4c9)
-- Usage ingestion. `wingtel usage ingest` streams a file with COPY into the session's
-- temporary table usage_staging (syntax already checked, problems noted per line), then calls
-- ingest_usage, which does the rest in set-based statements: resolve each MDN to its line,
-- quarantine what cannot be taken, insert the rest once (re-deliveries are ignored) and add
-- the new usage to the daily rollups.

create or replace function private.ensure_usage_partition(month timestamptz)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  first_day timestamptz := date_trunc('month', month, 'UTC');
  name text := format('usage_records_y%sm%s', to_char(first_day at time zone 'UTC', 'YYYY'), to_char(first_day at time zone 'UTC', 'MM'));
begin
  if to_regclass('partitions.' || name) is not null then
    return;
  end if;
  -- Two ingests creating the same month wait for each other.
  perform pg_advisory_xact_lock(hashtext('wingtel.usage_partitions'));
  if to_regclass('partitions.' || name) is null then
    execute format('create table partitions.%I partition of public.usage_records for values from (%L) to (%L)',
                   name, first_day, first_day + interval '1 month');
    execute format('comment on table partitions.%I is %L', name, 'Usage records of one month (UTC); read them through public.usage_records.');
  end if;
end;
$$;
comment on function private.ensure_usage_partition(timestamptz) is 'Creates the monthly partition of usage_records that holds the given moment (UTC months), if missing.';
revoke all on function private.ensure_usage_partition(timestamptz) from public;

create or replace function public.ingest_usage(organization_id uuid, source text, file_name text default null, file_sha256 text default null)
returns public.usage_batches
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid := ingest_usage.organization_id;
  zone text;
  batch public.usage_batches;
  month timestamptz;
begin
  perform private.require_role(org, 'operator');
  if to_regclass('pg_temp.usage_staging') is null then
    raise exception 'no usage_staging table in this session' using errcode = '42P01',
      hint = 'Load the file with `wingtel usage ingest`, which creates and fills it.';
  end if;
  select o.time_zone into zone from public.organizations o where o.id = org;
  if zone is null then
    raise exception 'there is no organization %', org using errcode = 'P0002';
  end if;
  if nullif(btrim(ingest_usage.source), '') is null then
    raise exception 'a usage batch needs a source (the carrier or feed it came from)' using errcode = '22023';
  end if;
  insert into public.usage_batches (organization_id, source, file_name, file_sha256)
  values (org, ingest_usage.source, ingest_usage.file_name, ingest_usage.file_sha256)
  returning * into batch;

  for month in
    select distinct date_trunc('month', s.recorded_at, 'UTC') from pg_temp.usage_staging s
    where s.problem is null and s.recorded_at is not null
  loop
    perform private.ensure_usage_partition(month);
  end loop;

  with numbers as (
    -- Carrier files write MDNs as 10 digits; lines keep E.164.
    select n.raw, public.normalize_mdn(n.raw) as mdn
    from (select distinct s.mdn as raw from pg_temp.usage_staging s where s.problem is null) n
  ), lines as (
    -- Each distinct number once: is it valid, and which line has it (a live one first, then the newest).
    select distinct on (n.raw) n.raw, n.mdn, l.id
    from numbers n left join public.subscribers l on l.organization_id = org and l.mdn = n.mdn
    order by n.raw, (l.status in ('pending', 'active', 'suspended')) desc nulls last, l.created_at desc
  ), checked as (
    select s.line_number, s.mdn, s.recorded_at, s.kind, s.quantity, s.record_id, l.id as subscriber_id,
           coalesce(s.problem,
             case
               when l.mdn is null then format('MDN %s is not a valid phone number', s.mdn)
               when l.id is null then format('no line with MDN %s', s.mdn)
               when s.recorded_at > now() + interval '1 hour' then format('usage dated in the future (%s)', s.recorded_at)
               when s.quantity < 0 then format('negative quantity %s', s.quantity)
             end) as reason
    from pg_temp.usage_staging s left join lines l on l.raw = s.mdn
  ), quarantined as (
    insert into public.usage_quarantine (organization_id, batch_id, line_number, raw, reason)
    select org, batch.id, c.line_number,
           jsonb_strip_nulls(jsonb_build_object('mdn', c.mdn, 'recorded_at', c.recorded_at, 'kind', c.kind,
                                                'quantity', c.quantity, 'record_id', c.record_id)),
           c.reason
    from checked c where c.reason is not null
    returning 1
  ), inserted as (
    insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
    select org, ingest_usage.source, c.record_id, c.recorded_at, c.subscriber_id, c.kind::public.usage_kind, c.quantity, batch.id
    from checked c where c.reason is null
    on conflict do nothing
    returning subscriber_id, recorded_at, kind, quantity
  ), rolled as (
    insert into public.usage_daily as d (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
    select org, i.subscriber_id, (i.recorded_at at time zone zone)::date,
           coalesce(sum(i.quantity) filter (where i.kind = 'data'), 0),
           coalesce(sum(i.quantity) filter (where i.kind = 'voice'), 0),
           coalesce(sum(i.quantity) filter (where i.kind = 'sms'), 0)
    from inserted i
    group by i.subscriber_id, (i.recorded_at at time zone zone)::date
    on conflict on constraint usage_daily_pkey do update
      set data_bytes = d.data_bytes + excluded.data_bytes,
          voice_seconds = d.voice_seconds + excluded.voice_seconds,
          sms_count = d.sms_count + excluded.sms_count
    returning 1
  ), counts as (
    select (select count(*) from checked) as total, (select count(*) from inserted) as inserted,
           (select count(*) from quarantined) as quarantined, (select count(*) from rolled) as days
  )
  update public.usage_batches b
     set rows_total = c.total, rows_inserted = c.inserted, rows_quarantined = c.quarantined,
         rows_duplicate = c.total - c.inserted - c.quarantined
    from counts c
   where b.organization_id = org and b.id = batch.id
  returning b.* into batch;
  return batch;
end;
$$;
comment on function public.ingest_usage(uuid, text, text, text) is 'Takes the rows of the session''s usage_staging table into usage_records (operators and services): lines resolved by MDN, re-deliveries ignored, problems quarantined with the reason, daily rollups updated. Returns the batch with its counts.';
revoke all on function public.ingest_usage(uuid, text, text, text) from public, anon;
grant execute on function public.ingest_usage(uuid, text, text, text) to authenticated, service_role;

-- >>> sql/30_usage/20_access.sql (sha256 08688deab7ccd6bc01e62ce13009d868c7725d724e3b5f3b82b43fcae8395209)
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
