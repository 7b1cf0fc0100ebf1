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

-- Daily rollups. ingest_usage leaves the line-days of what it took in pg_temp.usage_days;
-- private.add_usage_days adds them to usage_daily. A line-day not there yet (the usual case) is
-- one plain insert; if any is already there, that insert is undone and the days are added to.
create or replace function private.add_usage_days(organization_id uuid)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  added bigint;
begin
  begin
    insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
    select add_usage_days.organization_id, d.subscriber_id, d.day, d.data_bytes, d.voice_seconds, d.sms_count from pg_temp.usage_days d;
  exception when unique_violation then
    insert into public.usage_daily as u (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
    select add_usage_days.organization_id, d.subscriber_id, d.day, d.data_bytes, d.voice_seconds, d.sms_count from pg_temp.usage_days d
    on conflict on constraint usage_daily_pkey do update
      set data_bytes = u.data_bytes + excluded.data_bytes,
          voice_seconds = u.voice_seconds + excluded.voice_seconds,
          sms_count = u.sms_count + excluded.sms_count;
  end;
  get diagnostics added = row_count;
  truncate pg_temp.usage_days;
  return added;
end;
$$;
comment on function private.add_usage_days(uuid) is 'Adds the session''s pg_temp.usage_days (line-day sums of one batch) to usage_daily.';
revoke all on function private.add_usage_days(uuid) from public;

-- Rolls up the organization's batches that ingest_usage left for later (roll_up => false). The
-- session's own last batch is summed from what it took (still in its temporary tables); any
-- other (its loader stopped between the two steps) is read back from usage_records by batch
-- within the batch's time bounds. Each batch is claimed with its row, so it is added once.
create or replace function public.roll_up_usage(organization_id uuid)
returns integer
language plpgsql
security definer
set search_path = ''
set work_mem = '128MB'
as $$
declare
  org uuid := roll_up_usage.organization_id;
  zone text;
  pending record;
  done integer := 0;
  session_batch uuid;
  session_first_delivery boolean;
  session_cutoff timestamptz;
begin
  perform private.require_role(org, 'operator');
  select o.time_zone into zone from public.organizations o where o.id = org;
  if to_regclass('pg_temp.usage_taken_batch') is not null then
    select t.batch_id, t.first_delivery, t.future_cutoff into session_batch, session_first_delivery, session_cutoff
    from pg_temp.usage_taken_batch t where t.organization_id = org;
  end if;
  for pending in
    select b.id, b.first_recorded_at, b.last_recorded_at from public.usage_batches b
    where b.organization_id = org and b.rolled_up_at is null
    order by b.received_at
  loop
    update public.usage_batches b set rolled_up_at = now()
     where b.organization_id = org and b.id = pending.id and b.rolled_up_at is null;
    continue when not found;  -- another session took it
    create temp table if not exists usage_days (subscriber_id uuid, day date, data_bytes bigint, voice_seconds bigint, sms_count bigint);
    truncate pg_temp.usage_days;
    if pending.id = session_batch and session_first_delivery then
      insert into pg_temp.usage_days
      select l.subscriber_id, (s.recorded_at at time zone zone)::date,
             coalesce(sum(s.quantity) filter (where s.kind = 'data'), 0),
             coalesce(sum(s.quantity) filter (where s.kind = 'voice'), 0),
             coalesce(sum(s.quantity) filter (where s.kind = 'sms'), 0)
      from pg_temp.usage_staging s join pg_temp.usage_lines l on l.raw = s.mdn
      where (s.problem is null and l.subscriber_id is not null and s.recorded_at <= session_cutoff
             and s.quantity >= 0 and s.record_id is not null and s.kind in ('data', 'voice', 'sms')) is true
      group by 1, 2;
    elsif pending.id = session_batch then
      insert into pg_temp.usage_days
      select t.subscriber_id, (t.recorded_at at time zone zone)::date,
             coalesce(sum(t.quantity) filter (where t.kind = 'data'), 0),
             coalesce(sum(t.quantity) filter (where t.kind = 'voice'), 0),
             coalesce(sum(t.quantity) filter (where t.kind = 'sms'), 0)
      from pg_temp.usage_taken t
      group by 1, 2;
    else
      insert into pg_temp.usage_days
      select r.subscriber_id, (r.recorded_at at time zone zone)::date,
             coalesce(sum(r.quantity) filter (where r.kind = 'data'), 0),
             coalesce(sum(r.quantity) filter (where r.kind = 'voice'), 0),
             coalesce(sum(r.quantity) filter (where r.kind = 'sms'), 0)
      from public.usage_records r
      where r.organization_id = org and r.batch_id = pending.id
        and r.recorded_at >= pending.first_recorded_at and r.recorded_at <= pending.last_recorded_at
      group by 1, 2;
    end if;
    perform private.add_usage_days(org);
    done := done + 1;
  end loop;
  if session_batch is not null then
    truncate pg_temp.usage_taken, pg_temp.usage_lines;
    delete from pg_temp.usage_taken_batch t where t.organization_id = org;
  end if;
  return done;
end;
$$;
comment on function public.roll_up_usage(uuid) is 'Adds the organization''s usage batches not rolled up yet to usage_daily (operators and services); ingest_usage(…, roll_up => false) leaves its batch for this. The bill run calls it before rating. Returns the number of batches rolled up.';
revoke all on function public.roll_up_usage(uuid) from public, anon;
grant execute on function public.roll_up_usage(uuid) to authenticated, service_role;

drop function if exists public.ingest_usage(uuid, text, text, text);
create or replace function public.ingest_usage(organization_id uuid, source text, file_name text default null, file_sha256 text default null,
                                               roll_up boolean default true)
returns public.usage_batches
language plpgsql
security definer
set search_path = ''
set work_mem = '128MB'  -- a large file's line-day sums fit in memory instead of spilling
as $$
declare
  org uuid := ingest_usage.organization_id;
  zone text;
  batch public.usage_batches;
  month timestamptz;
  first_at timestamptz;
  last_at timestamptz;
  total bigint;
  inserted bigint;
  quarantined bigint;
  first_delivery boolean := true;
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
  -- Temporary tables are never analyzed on their own; without figures the planner takes a
  -- million staged rows for a few thousand and sorts where it should hash.
  analyze pg_temp.usage_staging;

  -- The staged start times' bounds (they also bound where a later roll-up looks for the
  -- batch's records), and a partition for each month present: one when they share a month.
  select min(s.recorded_at), max(s.recorded_at) into first_at, last_at from pg_temp.usage_staging s where s.problem is null;
  if date_trunc('month', first_at, 'UTC') = date_trunc('month', last_at, 'UTC') then
    perform private.ensure_usage_partition(first_at);
  else
    for month in
      select distinct date_trunc('month', s.recorded_at, 'UTC') from pg_temp.usage_staging s
      where s.problem is null and s.recorded_at is not null
    loop
      perform private.ensure_usage_partition(month);
    end loop;
  end if;

  -- Each distinct number once: is it valid, and which line has it (a live one first, then the
  -- newest). Carrier files write MDNs as 10 digits; lines keep E.164. `wingtel usage ingest`
  -- hands over the file's distinct numbers in pg_temp.usage_numbers (collected while reading);
  -- otherwise they come from the staged rows. A number missing from that list would leave its
  -- rows neither taken nor quarantined, which the count check below refuses.
  if to_regclass('pg_temp.usage_numbers') is null then
    create temp table usage_numbers as select distinct s.mdn as raw from pg_temp.usage_staging s where s.problem is null;
  end if;
  create temp table if not exists usage_lines (raw text, mdn text, subscriber_id uuid);
  truncate pg_temp.usage_lines;
  insert into pg_temp.usage_lines (raw, mdn, subscriber_id)
  with numbers as materialized (  -- normalized once per number, not once per comparison
    select d.raw, public.normalize_mdn(d.raw) as mdn
    from pg_temp.usage_numbers d
  )
  select distinct on (n.raw) n.raw, n.mdn, l.id
  from numbers n left join public.subscribers l on l.organization_id = org and l.mdn = n.mdn
  order by n.raw, (l.status in ('pending', 'active', 'suspended')) desc nulls last, l.created_at desc;
  analyze pg_temp.usage_lines;
  drop table pg_temp.usage_numbers;  -- read once: a later ingest in this session cannot see a stale list

  -- What cannot be taken, with the reason: a problem found while reading, a number that is not
  -- valid or names no line (the few such numbers are joined, not every row's), a start in the
  -- future, a negative quantity. Every other row is taken: the records' inserts below and
  -- roll_up_usage test `s.problem is null and l.subscriber_id is not null and (…) is true` over
  -- the join to all numbers, the complement of this test; the counts are checked against it.
  insert into public.usage_quarantine (organization_id, batch_id, line_number, raw, reason)
  select org, batch.id, s.line_number,
         jsonb_strip_nulls(jsonb_build_object('mdn', s.mdn, 'recorded_at', s.recorded_at, 'kind', s.kind,
                                              'quantity', s.quantity, 'record_id', s.record_id)),
         coalesce(s.problem,
           case
             when s.mdn is null or (bad.raw is not null and bad.mdn is null) then format('MDN %s is not a valid phone number', s.mdn)
             when bad.raw is not null then format('no line with MDN %s', s.mdn)
             when s.recorded_at > now() + interval '1 hour' then format('usage dated in the future (%s)', s.recorded_at)
             when s.quantity < 0 then format('negative quantity %s', s.quantity)
             else 'unreadable record'
           end)
  from pg_temp.usage_staging s
  left join (select l.raw, l.mdn from pg_temp.usage_lines l where l.subscriber_id is null) bad on bad.raw = s.mdn
  where s.problem is not null or s.mdn is null or bad.raw is not null
     or (s.recorded_at <= now() + interval '1 hour' and s.quantity >= 0 and s.record_id is not null
         and s.kind in ('data', 'voice', 'sms')) is not true;
  get diagnostics quarantined = row_count;

  -- The records. A first delivery (the usual case) is one plain insert. If any record is already
  -- there (a re-delivery, an overlapping file, a concurrent ingest of the same feed) that insert
  -- is undone, and the careful path inserts the new ones only and keeps those for the roll-up.
  create temp table if not exists usage_taken (subscriber_id uuid, recorded_at timestamptz, kind public.usage_kind, quantity bigint);
  create temp table if not exists usage_taken_batch (organization_id uuid primary key, batch_id uuid, first_delivery boolean,
                                                     future_cutoff timestamptz);
  truncate pg_temp.usage_taken;
  delete from pg_temp.usage_taken_batch t where t.organization_id = org;
  begin
    insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
    select org, ingest_usage.source, s.record_id, s.recorded_at, l.subscriber_id, s.kind::public.usage_kind, s.quantity, batch.id
    from pg_temp.usage_staging s join pg_temp.usage_lines l on l.raw = s.mdn
    where (s.problem is null and l.subscriber_id is not null and s.recorded_at <= now() + interval '1 hour'
           and s.quantity >= 0 and s.record_id is not null and s.kind in ('data', 'voice', 'sms')) is true;
    get diagnostics inserted = row_count;
  exception when unique_violation then
    first_delivery := false;
    with taken as (
      insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
      select org, ingest_usage.source, s.record_id, s.recorded_at, l.subscriber_id, s.kind::public.usage_kind, s.quantity, batch.id
      from pg_temp.usage_staging s join pg_temp.usage_lines l on l.raw = s.mdn
      where (s.problem is null and l.subscriber_id is not null and s.recorded_at <= now() + interval '1 hour'
             and s.quantity >= 0 and s.record_id is not null and s.kind in ('data', 'voice', 'sms')) is true
      on conflict do nothing
      returning subscriber_id, recorded_at, kind, quantity
    )
    insert into pg_temp.usage_taken (subscriber_id, recorded_at, kind, quantity) select * from taken;
    get diagnostics inserted = row_count;
  end;

  select count(*) into total from pg_temp.usage_staging;
  if first_delivery and inserted + quarantined <> total then
    raise exception 'usage ingestion lost track of % staged rows (% taken, % quarantined)', total - inserted - quarantined, inserted, quarantined
      using errcode = 'XX000', hint = 'Nothing was stored. This is a defect in ingest_usage; please report it with the file.';
  end if;
  update public.usage_batches b
     set rows_total = total, rows_inserted = inserted, rows_quarantined = quarantined,
         rows_duplicate = total - inserted - quarantined,
         first_recorded_at = case when inserted > 0 then first_at end, last_recorded_at = case when inserted > 0 then last_at end
   where b.organization_id = org and b.id = batch.id
  returning b.* into batch;

  -- What the roll-up of this batch in this session reads: the staged rows (a first delivery took
  -- every row it did not quarantine) or the rows the careful path took.
  insert into pg_temp.usage_taken_batch (organization_id, batch_id, first_delivery, future_cutoff)
  values (org, batch.id, first_delivery, now() + interval '1 hour');
  if ingest_usage.roll_up then
    perform public.roll_up_usage(org);
    select * into batch from public.usage_batches b where b.organization_id = org and b.id = batch.id;
  end if;
  return batch;
end;
$$;
comment on function public.ingest_usage(uuid, text, text, text, boolean) is 'Takes the rows of the session''s usage_staging table into usage_records (operators and services): lines resolved by MDN, re-deliveries ignored, problems quarantined with the reason. The daily rollups are updated in the same transaction, or with roll_up => false left to roll_up_usage (a large file commits its records first). Returns the batch with its counts.';
revoke all on function public.ingest_usage(uuid, text, text, text, boolean) from public, anon;
grant execute on function public.ingest_usage(uuid, text, text, text, boolean) to authenticated, service_role;

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
