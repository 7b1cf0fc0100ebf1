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

-- The path carrier callbacks take (no COPY): a JSON array of records, checked one by one like a
-- file's lines (a record that cannot be read is quarantined with the reason, never dropped),
-- then ingest_usage as for a file. Each record:
--   {"mdn": "+13125550101", "recorded_at": "2026-11-02T14:00:00Z", "kind": "data|voice|sms",
--    "quantity": 1048576, "record_id": "<the source's id: a re-delivery counts once>"}
create or replace function private.try_timestamptz(value text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)?$' then
    return null;
  end if;
  if value ~ '(Z|z|[+-]\d{2}(:?\d{2})?)$' and value ~ '[T ]' then
    return value::timestamptz;
  end if;
  return value::timestamp at time zone 'UTC';
exception when others then
  return null;
end;
$$;
comment on function private.try_timestamptz(text) is 'An ISO 8601 timestamp (a date, an optional time, an optional zone; UTC when none is given), or null when the text is not one or names an impossible date.';

create or replace function public.ingest_usage_records(organization_id uuid, source text, records jsonb, reference text default null)
returns public.usage_batches
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(ingest_usage_records.organization_id, 'operator');
  if jsonb_typeof(ingest_usage_records.records) is distinct from 'array' then
    raise exception 'usage records come as a JSON array' using errcode = '22023';
  end if;
  create temp table if not exists usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text,
    quantity bigint, record_id text, problem text) on commit drop;
  truncate pg_temp.usage_staging;
  insert into pg_temp.usage_staging (line_number, mdn, recorded_at, kind, quantity, record_id, problem)
  select r.n, r.value ->> 'mdn', private.try_timestamptz(r.value ->> 'recorded_at'), r.value ->> 'kind',
         case when (r.value ->> 'quantity') ~ '^-?[0-9]{1,18}$' then (r.value ->> 'quantity')::bigint end,
         nullif(r.value ->> 'record_id', ''),
         case
           when jsonb_typeof(r.value) is distinct from 'object' then 'a usage record is a JSON object'
           when nullif(r.value ->> 'mdn', '') is null then 'no mdn'
           when private.try_timestamptz(r.value ->> 'recorded_at') is null then format('recorded_at %s is not a timestamp', coalesce(r.value ->> 'recorded_at', 'missing'))
           when coalesce(r.value ->> 'kind', '') not in ('data', 'voice', 'sms') then format('kind %s is not data, voice or sms', coalesce(r.value ->> 'kind', 'missing'))
           when coalesce(r.value ->> 'quantity', '') !~ '^-?[0-9]{1,18}$' then format('quantity %s is not a whole number', coalesce(r.value ->> 'quantity', 'missing'))
           when nullif(r.value ->> 'record_id', '') is null then 'no record_id (a re-delivery could not be recognised)'
         end
  from jsonb_array_elements(ingest_usage_records.records) with ordinality as r (value, n);
  return public.ingest_usage(ingest_usage_records.organization_id, ingest_usage_records.source, ingest_usage_records.reference, null);
end;
$$;
comment on function public.ingest_usage_records(uuid, text, jsonb, text) is 'Ingests usage records given as a JSON array (the carrier callbacks'' path): each record checked like a file''s line (unreadable ones quarantined with the reason), then ingest_usage. Operators and services; returns the batch with its counts.';
revoke all on function private.try_timestamptz(text), public.ingest_usage_records(uuid, text, jsonb, text) from public, anon;
grant execute on function public.ingest_usage_records(uuid, text, jsonb, text) to authenticated, service_role;
