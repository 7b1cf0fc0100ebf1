-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/60_import/20_validate.sql (sha256 85c3d5a5be485d14b39b14176d09b968ad7596f0e2bf32ae9d4d628c22a3f688)
-- Validation of a staged batch, set-based: one pass builds the normalized rows (numbers in
-- E.164, states mapped, plans and carriers resolved), then each check is one statement that
-- writes its findings to import_issues with the row's line number. Running it again replaces
-- the batch's issues, so it can be repeated after the catalog or the mapping table changes.

create or replace function private.import_prepare(organization_id uuid, batch_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  org uuid := import_prepare.organization_id;
  batch uuid := import_prepare.batch_id;
  zone text;
begin
  if to_regclass('pg_temp.import_norm') is not null then
    if exists (select 1 from pg_temp.import_norm n where n.batch_id = batch limit 1) then
      return;
    end if;
    drop table pg_temp.import_norm;
  end if;
  select o.time_zone into zone from public.organizations o where o.id = org;
  -- The batch was just copied in: without fresh statistics every join below is planned for one row.
  analyze public.import_rows;
  -- Dates repeat (a few thousand days in a million rows): each distinct text is read once.
  drop table if exists pg_temp.import_dates;
  create temp table import_dates on commit drop as
  select v.raw, public.parse_import_date(v.raw) as day
  from (select nullif(btrim(r.start_date), '') as raw from public.import_rows r where r.organization_id = org and r.batch_id = batch
        union select nullif(btrim(r.end_date), '') from public.import_rows r where r.organization_id = org and r.batch_id = batch
        union select nullif(btrim(r.source_created_at), '') from public.import_rows r where r.organization_id = org and r.batch_id = batch) v
  where v.raw is not null;
  analyze pg_temp.import_dates;
  -- Carriers, countries and prices take a handful of spellings: each is resolved once too
  -- (a per-row join on reduced carrier keys cost more than the rest of this statement).
  drop table if exists pg_temp.import_values;
  create temp table import_values on commit drop as
  select 'carrier'::text as kind, v.raw, k.id::text as value
  from (select distinct nullif(btrim(r.carrier), '') as raw from public.import_rows r where r.organization_id = org and r.batch_id = batch) v
  left join lateral (
    select c.id from public.carriers c
    where c.organization_id = org
      and private.import_carrier_key(v.raw) in (private.import_carrier_key(c.code), private.import_carrier_key(c.name))
    order by c.code limit 1) k on true
  where v.raw is not null
  union all
  select 'country', v.raw, private.import_country(v.raw)
  from (select distinct r.country as raw from public.import_rows r where r.organization_id = org and r.batch_id = batch) v
  where v.raw is not null
  union all
  select 'price', v.raw, public.parse_import_cents(v.raw)::text
  from (select distinct nullif(btrim(r.plan_price), '') as raw from public.import_rows r where r.organization_id = org and r.batch_id = batch) v
  where v.raw is not null;
  analyze pg_temp.import_values;

  create temp table import_norm on commit drop as
  select r.batch_id, r.line_number,
    nullif(btrim(r.subscriber_ref), '') as subscriber_ref,
    coalesce(nullif(btrim(r.account_ref), ''), nullif(btrim(r.subscriber_ref), '')) as account_ref,
    coalesce(nullif(btrim(r.account_name), ''), nullif(btrim(concat_ws(' ', nullif(btrim(r.first_name), ''), nullif(btrim(r.last_name), ''))), '')) as account_name,
    nullif(lower(btrim(r.email)), '') as email,
    nullif(btrim(r.contact_phone), '') as contact_phone_raw,
    public.normalize_mdn(nullif(btrim(r.contact_phone), '')) as contact_phone,
    nullif(btrim(r.mdn), '') as mdn_raw,
    public.normalize_mdn(nullif(btrim(r.mdn), '')) as mdn,
    nullif(translate(r.iccid, E' \t\n\r\f\v', ''), '') as iccid,
    nullif(btrim(r.imsi), '') as imsi,
    nullif(translate(r.imei, E' \t\n\r\f\v', ''), '') as imei,
    nullif(btrim(r.status), '') as status_raw,
    m.line_status,
    nullif(btrim(r.plan_name), '') as plan_name,
    nullif(btrim(r.plan_ref), '') as plan_ref,
    p.id as plan_id, p.price_cents as catalog_price_cents, rp.carrier_id as plan_carrier_id,
    nullif(btrim(r.plan_price), '') as plan_price_raw,
    vp.value::bigint as price_cents,
    nullif(btrim(r.billing_day), '') as billing_day_raw,
    nullif(btrim(r.start_date), '') as start_raw, ds.day as start_date,
    nullif(btrim(r.end_date), '') as end_raw, de.day as end_date,
    nullif(btrim(r.source_created_at), '') as created_raw, dc.day as created_date,
    nullif(btrim(r.address_line1), '') as address_line1, nullif(btrim(r.address_line2), '') as address_line2,
    nullif(btrim(r.city), '') as city, nullif(upper(btrim(r.state)), '') as state,
    nullif(btrim(r.postal_code), '') as postal_code,
    nullif(btrim(r.country), '') as country_raw, case when r.country is null then private.import_country(null) else vn.value end as country,
    nullif(btrim(r.carrier), '') as carrier_raw, coalesce(vc.value::uuid, case when nullif(btrim(r.carrier), '') is null then rp.carrier_id end) as carrier_id,
    zone as time_zone
  from public.import_rows r
  left join public.import_status_map m on m.source_status = lower(btrim(r.status))
  left join pg_temp.import_dates ds on ds.raw = nullif(btrim(r.start_date), '')
  left join pg_temp.import_dates de on de.raw = nullif(btrim(r.end_date), '')
  left join pg_temp.import_dates dc on dc.raw = nullif(btrim(r.source_created_at), '')
  left join lateral (
    select pl.id, pl.price_cents, pl.carrier_rate_plan_id from public.plans pl
    where pl.organization_id = org
      and (lower(pl.name) = lower(btrim(r.plan_name)) or lower(pl.code) = lower(btrim(r.plan_name))
           or lower(pl.code) = lower(btrim(r.plan_ref)))
    order by (lower(pl.name) = lower(btrim(r.plan_name))) desc, pl.status, pl.code
    limit 1) p on true
  left join public.carrier_rate_plans rp on rp.organization_id = org and rp.id = p.carrier_rate_plan_id
  left join pg_temp.import_values vc on vc.kind = 'carrier' and vc.raw = nullif(btrim(r.carrier), '')
  left join pg_temp.import_values vn on vn.kind = 'country' and vn.raw = r.country
  left join pg_temp.import_values vp on vp.kind = 'price' and vp.raw = nullif(btrim(r.plan_price), '')
  where r.organization_id = org and r.batch_id = batch and r.parse_error is null;
  create index on pg_temp.import_norm (line_number);
  analyze pg_temp.import_norm;
end;
$$;
comment on function private.import_prepare(uuid, uuid) is 'Builds the transaction''s temp table import_norm: the batch''s readable rows with values trimmed, numbers in E.164, states mapped, plans and carriers resolved, dates parsed.';
revoke all on function private.import_prepare(uuid, uuid) from public;

create or replace function public.validate_import_data(organization_id uuid, batch_id uuid)
returns table (validation_type text, severity public.import_severity, issue_count bigint, sample_issues jsonb)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  org uuid := validate_import_data.organization_id;
  batch uuid := validate_import_data.batch_id;
begin
  perform private.require_role(org, 'admin');
  if not exists (select 1 from public.import_batches b where b.organization_id = org and b.id = batch) then
    raise exception 'there is no import batch % in organization %', batch, org using errcode = 'P0002',
      hint = 'List the batches: select id, file_name, imported_at from import_batches order by imported_at desc.';
  end if;
  perform private.import_prepare(org, batch);
  delete from public.import_issues i where i.organization_id = org and i.batch_id = batch;

  -- Every check of a row is one element of an array built in a single pass (one tuple per
  -- row); only the rows with a finding are expanded into issues, with the closest plans looked
  -- up once per unknown plan name. Element k of messages is check k of the list c below (its
  -- type, severity and column) and of the value case (the offending text); keep the three in step.
  insert into public.import_issues (organization_id, batch_id, line_number, issue_type, severity, column_name, value, message, candidates)
  -- Rows the file reader could not take.
  select org, batch, r.line_number, 'unreadable_row', 'blocking'::public.import_severity, null, null, r.parse_error, null
  from public.import_rows r where r.organization_id = org and r.batch_id = batch and r.parse_error is not null
  union all
  select org, batch, f.line_number, c.issue_type, c.severity::public.import_severity, c.column_name,
    case c.k when 4 then f.mdn_raw when 5 then f.contact_phone_raw when 6 then f.iccid when 8 then f.imei when 9 then f.imsi
             when 10 then f.email when 11 then f.status_raw when 12 then coalesce(f.plan_name, f.plan_ref)
             when 13 then f.plan_price_raw when 14 then f.plan_price_raw when 15 then f.carrier_raw when 16 then f.start_raw
             when 17 then f.end_raw when 18 then f.created_raw when 20 then f.end_raw when 21 then f.start_raw
             when 22 then f.billing_day_raw when 23 then f.country_raw when 24 then f.state end,
    f.messages[c.k] || case when c.k = 12 then coalesce('; closest: ' || array_to_string(near.names, ', '), '') else '' end,
    case when c.k = 12 then near.names end
  from (
    select n.*, array[
      -- 1 missing_id
      case when n.subscriber_ref is null then 'the row has no subscription id (external id): Wingtel keys re-imports on it' end,
      -- 2 missing_name
      case when n.account_name is null then 'the customer has no name (first_name, last_name or profile name)' end,
      -- 3 missing_mdn
      case when n.mdn_raw is null and n.line_status in ('active', 'suspended') then 'an ' || n.line_status || ' line needs its MDN' end,
      -- 4 malformed_mdn
      case when n.mdn_raw is not null and n.mdn is null
           then 'MDN "' || n.mdn_raw || '" is not a valid 10-digit NANP number (area code and exchange start 2–9, no N11)' end,
      -- 5 malformed_contact_phone
      case when n.contact_phone_raw is not null and n.contact_phone is null
           then 'contact phone "' || n.contact_phone_raw || '" is not a valid phone number' end,
      -- 6 invalid_iccid
      case when n.iccid is not null and not public.is_valid_iccid(n.iccid)
           then 'ICCID "' || n.iccid || '" fails its check digit or is not 19–20 digits starting 89' end,
      -- 7 missing_iccid
      case when n.iccid is null and n.line_status in ('active', 'suspended') then 'an ' || n.line_status || ' line without a SIM (ICCID)' end,
      -- 8 invalid_imei
      case when n.imei is not null and not public.is_valid_imei(n.imei)
           then 'IMEI "' || n.imei || '" fails its check digit or is not 15 digits' end,
      -- 9 invalid_imsi
      case when n.imsi is not null and n.imsi !~ '^[0-9]{14,15}$' then 'IMSI "' || n.imsi || '" is not 14–15 digits' end,
      -- 10 invalid_email
      case when n.email is not null and n.email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then '"' || n.email || '" is not an email address' end,
      -- 11 unknown_status
      case when n.line_status is null
           then coalesce('status "' || n.status_raw || '" is not a known BeQuick line state', 'the row has no status')
                || ' (known: draft, pending, active, suspended, cancelled, error and the variants in import_status_map)' end,
      -- 12 unknown_plan
      case when n.plan_id is null then coalesce('plan "' || coalesce(n.plan_name, n.plan_ref) || '" matches no plan of the catalog', 'the row has no plan') end,
      -- 13 price_mismatch
      case when n.price_cents is not null and n.catalog_price_cents is not null and n.price_cents <> n.catalog_price_cents
           then format('price %s differs from the catalog price %s of the plan; Wingtel bills the catalog price',
                       to_char(n.price_cents / 100.0, 'FM999999990.00'), to_char(n.catalog_price_cents / 100.0, 'FM999999990.00')) end,
      -- 14 invalid_price
      case when n.plan_price_raw is not null and n.price_cents is null then 'price "' || n.plan_price_raw || '" is not an amount' end,
      -- 15 unknown_carrier
      case when n.carrier_id is null and n.plan_id is not null
           then coalesce('carrier "' || n.carrier_raw || '" is not one of the organization''s carriers', 'the plan''s carrier is unknown') end,
      -- 16 invalid_date (start)
      case when n.start_raw is not null and n.start_date is null
           then 'start date "' || n.start_raw || '" is not a date (use YYYY-MM-DD or MM/DD/YYYY)' end,
      -- 17 invalid_date (end)
      case when n.end_raw is not null and n.end_date is null
           then 'end date "' || n.end_raw || '" is not a date (use YYYY-MM-DD or MM/DD/YYYY)' end,
      -- 18 invalid_date (created)
      case when n.created_raw is not null and n.created_date is null then 'created date "' || n.created_raw || '" is not a date; today is used' end,
      -- 19 missing_end_date
      case when n.end_raw is null and n.line_status in ('cancelled', 'ported_out')
           then 'a ' || n.line_status || ' line without an end date: the line is migrated, its plan history is not' end,
      -- 20 end_before_start
      case when n.end_date < n.start_date then 'the line ends (' || n.end_date || ') before it starts (' || n.start_date || ')' end,
      -- 21 future_start
      case when n.start_date > (now() at time zone n.time_zone)::date + 1 then 'the line starts in the future (' || n.start_date || ')' end,
      -- 22 invalid_billing_day
      case when n.billing_day_raw is not null and (n.billing_day_raw !~ '^[0-9]{1,2}$' or n.billing_day_raw::int not between 1 and 31)
             and lower(n.billing_day_raw) not in ('monthly', 'month')
           then 'billing cycle "' || n.billing_day_raw || '" is not a day of the month; the start date''s day is used'
           when n.billing_day_raw ~ '^[0-9]{1,2}$' and n.billing_day_raw::int between 29 and 31
           then 'billing day ' || n.billing_day_raw || ' is after the 28th; Wingtel bills on the 28th' end,
      -- 23 invalid_country
      case when n.country is null then 'country "' || n.country_raw || '" is not a country code' end,
      -- 24 invalid_state
      case when n.country = 'US' and n.state is not null and n.state !~ '^[A-Z]{2}$' then 'state "' || n.state || '" is not a two-letter USPS code' end
    ] as messages
    from pg_temp.import_norm n
    offset 0) f
  join (values
    (1, 'missing_id', 'blocking', 'subscriber_ref'), (2, 'missing_name', 'blocking', 'account_name'), (3, 'missing_mdn', 'blocking', 'mdn'),
    (4, 'malformed_mdn', 'blocking', 'mdn'), (5, 'malformed_contact_phone', 'blocking', 'contact_phone'),
    (6, 'invalid_iccid', 'blocking', 'iccid'), (7, 'missing_iccid', 'warning', 'iccid'), (8, 'invalid_imei', 'blocking', 'imei'),
    (9, 'invalid_imsi', 'blocking', 'imsi'), (10, 'invalid_email', 'blocking', 'email'), (11, 'unknown_status', 'blocking', 'status'),
    (12, 'unknown_plan', 'blocking', 'plan_name'), (13, 'price_mismatch', 'warning', 'plan_price'), (14, 'invalid_price', 'warning', 'plan_price'),
    (15, 'unknown_carrier', 'blocking', 'carrier'), (16, 'invalid_date', 'blocking', 'start_date'), (17, 'invalid_date', 'blocking', 'end_date'),
    (18, 'invalid_date', 'warning', 'created_at'), (19, 'missing_end_date', 'warning', 'end_date'), (20, 'end_before_start', 'blocking', 'end_date'),
    (21, 'future_start', 'blocking', 'start_date'), (22, 'invalid_billing_day', 'warning', 'billing_day'), (23, 'invalid_country', 'blocking', 'country'),
    (24, 'invalid_state', 'blocking', 'state')
  ) as c(k, issue_type, severity, column_name) on f.messages[c.k] is not null
  left join (
    select u.name, array_agg(t.name order by t.score desc, t.name) as names
    from (select distinct coalesce(x.plan_name, x.plan_ref) as name from pg_temp.import_norm x
          where x.plan_id is null and coalesce(x.plan_name, x.plan_ref) is not null) u
    cross join lateral (
      select pl.name, extensions.similarity(lower(pl.name), lower(u.name)) as score
      from public.plans pl where pl.organization_id = org and pl.status = 'active'
      order by score desc, pl.name limit 3) t
    group by u.name) near on c.k = 12 and near.name = coalesce(f.plan_name, f.plan_ref)
  where num_nonnulls(variadic f.messages) > 0;

  -- Duplicates inside the file: one subscription id twice, and live lines sharing an MDN or a SIM.
  insert into public.import_issues (organization_id, batch_id, line_number, issue_type, severity, column_name, value, message)
  select org, batch, d.line_number, d.issue_type, 'blocking', d.column_name, d.value,
    format('%s %s is also on line%s %s of this file', d.label, d.value, case when cardinality(d.others) > 1 then 's' else '' end, array_to_string(d.others, ', '))
  from (
    select n.line_number, 'duplicate_id_in_file' as issue_type, 'subscriber_ref' as column_name, 'subscription id' as label, n.subscriber_ref as value,
      array(select o.line_number from pg_temp.import_norm o where o.subscriber_ref = n.subscriber_ref and o.line_number <> n.line_number order by 1 limit 5) as others
    from pg_temp.import_norm n
    where n.subscriber_ref in (select subscriber_ref from pg_temp.import_norm where subscriber_ref is not null group by 1 having count(*) > 1)
    union all
    select n.line_number, 'duplicate_mdn_in_file', 'mdn', 'MDN', n.mdn,
      array(select o.line_number from pg_temp.import_norm o where o.mdn = n.mdn and o.line_status in ('pending', 'active', 'suspended') and o.line_number <> n.line_number order by 1 limit 5)
    from pg_temp.import_norm n
    where n.line_status in ('pending', 'active', 'suspended')
      and n.mdn in (select mdn from pg_temp.import_norm where mdn is not null and line_status in ('pending', 'active', 'suspended') group by 1 having count(*) > 1)
    union all
    select n.line_number, 'duplicate_iccid_in_file', 'iccid', 'ICCID', n.iccid,
      array(select o.line_number from pg_temp.import_norm o where o.iccid = n.iccid and o.line_status in ('pending', 'active', 'suspended') and o.line_number <> n.line_number order by 1 limit 5)
    from pg_temp.import_norm n
    where n.line_status in ('pending', 'active', 'suspended')
      and n.iccid in (select iccid from pg_temp.import_norm where iccid is not null and line_status in ('pending', 'active', 'suspended') group by 1 having count(*) > 1)
  ) as d;

  -- Against what Wingtel already holds: a live line of another subscription with the number or the SIM.
  insert into public.import_issues (organization_id, batch_id, line_number, issue_type, severity, column_name, value, message)
  select org, batch, n.line_number, 'mdn_in_use', 'blocking'::public.import_severity, 'mdn', n.mdn,
    format('MDN %s is already in use by a live line in Wingtel (%s)', n.mdn, coalesce('external id ' || s.external_id, 'line ' || s.id))
  from pg_temp.import_norm n
  join public.subscribers s on s.organization_id = org and s.mdn = n.mdn and s.status in ('pending', 'active', 'suspended')
  where n.line_status in ('pending', 'active', 'suspended') and s.external_id is distinct from n.subscriber_ref
  union all
  select org, batch, n.line_number, 'iccid_in_use', 'blocking'::public.import_severity, 'iccid', n.iccid,
    format('SIM %s is already assigned to a live line in Wingtel (%s)', n.iccid, coalesce('external id ' || s.external_id, 'line ' || s.id))
  from pg_temp.import_norm n
  join public.sim_cards c on c.organization_id = org and c.iccid = n.iccid
  join public.subscribers s on s.organization_id = org and s.current_sim_id = c.id and s.status in ('pending', 'active', 'suspended')
  where n.line_status in ('pending', 'active', 'suspended') and s.external_id is distinct from n.subscriber_ref;

  update public.import_batches b set validated_at = now() where b.organization_id = org and b.id = batch;

  return query
  select i.issue_type, i.severity, count(*),
    jsonb_agg(jsonb_build_object('line', i.line_number, 'value', i.value, 'message', i.message) order by i.line_number)
      filter (where i.rank <= 5)
  from (select ii.*, row_number() over (partition by ii.issue_type, ii.severity order by ii.line_number) as rank
        from public.import_issues ii where ii.organization_id = org and ii.batch_id = batch) as i
  group by i.issue_type, i.severity
  order by i.severity, count(*) desc, i.issue_type;
end;
$$;
comment on function public.validate_import_data(uuid, uuid) is 'Checks a staged import batch (admins): writes every problem to import_issues with its line number and returns one row per kind of problem with its count and up to five samples. Blocking problems keep the row from being migrated. Repeatable.';
revoke all on function public.validate_import_data(uuid, uuid) from public, anon;
grant execute on function public.validate_import_data(uuid, uuid) to authenticated, service_role;

-- >>> sql/60_import/30_migrate.sql (sha256 63b1b04571e5b6336ab43f022eac277f1e61795f15dba6666459db345e0e40b6)
-- Migration of a validated batch, set-based and in the caller's transaction: accounts, SIMs,
-- devices, lines and their plans are created or updated by the source's ids (external_id),
-- through the same triggers and constraints as everything else. A row with a blocking issue
-- is skipped and stays listed; re-running the same file changes nothing; a newer export
-- applies what changed and lists the lines that disappeared from it for review.

create or replace function private.ordered_id_prefix()
returns text
language sql
volatile
set search_path = ''
as $$
  -- UUIDv7 layout (RFC 9562) for PostgreSQL 15+, which has no uuidv7(): 48 bits of Unix
  -- milliseconds, the version 7, 12 random bits, the variant and 12 more random bits; the
  -- caller appends 12 hex digits of its own sequence (an import's line numbers).
  select lpad(to_hex((extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
    || substr(md5(random()::text), 1, 3) || (array['8', '9', 'a', 'b'])[1 + floor(random() * 4)::int]
    || substr(md5(random()::text), 1, 3)
$$;
comment on function private.ordered_id_prefix() is 'The first 20 hex digits of a time-ordered UUID (v7 layout): append 12 hex digits of a sequence for ids that sort by creation, so bulk inserts append to the primary key.';
revoke all on function private.ordered_id_prefix() from public;

create or replace function public.migrate_subscriber_data(organization_id uuid, batch_id uuid)
returns table (entity text, created bigint, updated bigint, unchanged bigint, skipped bigint)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  org uuid := migrate_subscriber_data.organization_id;
  batch uuid := migrate_subscriber_data.batch_id;
  rows_skipped bigint;
  acc_created bigint; acc_updated bigint; acc_total bigint;
  sim_created bigint; sim_updated bigint; sim_total bigint;
  dev_created bigint; dev_total bigint;
  sub_created bigint; sub_updated bigint; sub_total bigint;
  plan_created bigint; plan_closed bigint; plan_total bigint;  -- plan_total: lines whose plan stayed as it was
  -- New rows get time-ordered ids (private.ordered_id_prefix and the file's line number) so a
  -- million inserts append to each primary key instead of touching a random page of it per
  -- row; existing rows keep their ids. Each table draws its own prefix (its own random bits).
  account_ids text := private.ordered_id_prefix();
  sim_ids text := private.ordered_id_prefix();
  device_ids text := private.ordered_id_prefix();
  line_ids text := private.ordered_id_prefix();
  plan_ids text := private.ordered_id_prefix();
begin
  perform private.require_role(org, 'admin');
  if not exists (select 1 from public.import_batches b where b.organization_id = org and b.id = batch) then
    raise exception 'there is no import batch % in organization %', batch, org using errcode = 'P0002';
  end if;
  if not exists (select 1 from public.import_batches b where b.organization_id = org and b.id = batch and b.validated_at is not null) then
    perform public.validate_import_data(org, batch);
  end if;
  perform private.import_prepare(org, batch);
  -- Uniqueness was checked set-based by validation; the per-row look-ups would be quadratic here.
  perform set_config('wingtel.bulk_load', 'on', true);
  if coalesce(current_setting('wingtel.actor', true), '') = '' then
    perform set_config('wingtel.actor', 'bequick import', true);
  end if;

  drop table if exists pg_temp.import_ok;
  create temp table import_ok on commit drop as
  select n.*,
    (coalesce(n.start_date, n.created_date, (now() at time zone n.time_zone)::date)::timestamp at time zone n.time_zone) as starts_at,
    case when n.line_status in ('cancelled', 'ported_out')
         then (coalesce(n.end_date, n.start_date, n.created_date, (now() at time zone n.time_zone)::date)::timestamp at time zone n.time_zone) end as ends_at
  from pg_temp.import_norm n
  where not exists (
    select 1 from public.import_issues i
    where i.organization_id = org and i.batch_id = batch and i.line_number = n.line_number and i.severity = 'blocking');
  analyze pg_temp.import_ok;
  select count(*) into rows_skipped from public.import_rows r
  where r.organization_id = org and r.batch_id = batch and r.parse_error is null
    and not exists (select 1 from pg_temp.import_ok k where k.line_number = r.line_number);

  -- Accounts: the first row of each customer in the file carries its details.
  drop table if exists pg_temp.import_accounts;
  create temp table import_accounts (account_id uuid, inserted boolean) on commit drop;
  with src as (
    select distinct on (k.account_ref) k.*
    from pg_temp.import_ok k order by k.account_ref, k.line_number
  ), upserted as (
    insert into public.accounts as a (organization_id, id, external_id, name, email, phone, address_line1, address_line2, city, state,
                                      postal_code, country, billing_day, created_at)
    select org, (account_ids || lpad(to_hex(s.line_number), 12, '0'))::uuid, s.account_ref, s.account_name, s.email, s.contact_phone, s.address_line1, s.address_line2, s.city, s.state,
      s.postal_code, s.country,
      least(28, greatest(1, case when s.billing_day_raw ~ '^[0-9]{1,2}$' and s.billing_day_raw::int between 1 and 31
                                 then s.billing_day_raw::int else extract(day from coalesce(s.start_date, s.created_date, current_date))::int end)),
      coalesce(s.created_date::timestamp at time zone s.time_zone, now())
    from src s
    order by s.line_number
    on conflict (organization_id, external_id) do update
      set name = excluded.name, email = excluded.email, phone = excluded.phone, address_line1 = excluded.address_line1,
          address_line2 = excluded.address_line2, city = excluded.city, state = excluded.state, postal_code = excluded.postal_code,
          country = excluded.country
      where (a.name, a.email::text, a.phone, a.address_line1, a.address_line2, a.city, a.state, a.postal_code, a.country)
            is distinct from (excluded.name, excluded.email::text, excluded.phone, excluded.address_line1, excluded.address_line2,
                              excluded.city, excluded.state, excluded.postal_code, excluded.country)
    returning a.id, (a.xmax = 0) as inserted
  ), kept as (
    insert into pg_temp.import_accounts select u.id, u.inserted from upserted u returning inserted
  )
  select count(*) filter (where inserted), count(*) filter (where not inserted), (select count(*) from src)
  into acc_created, acc_updated, acc_total from kept;
  analyze pg_temp.import_accounts;

  -- SIMs: a live row's SIM wins over a cancelled row's for the same ICCID.
  with src as (
    select distinct on (k.iccid) k.line_number, k.iccid, k.imsi, k.carrier_id,
      case k.line_status when 'pending' then 'assigned' when 'active' then 'active' when 'suspended' then 'suspended'
                         else 'deactivated' end::public.sim_state as state
    from pg_temp.import_ok k where k.iccid is not null
    order by k.iccid, (k.line_status in ('pending', 'active', 'suspended')) desc, k.line_number desc
  ), upserted as (
    insert into public.sim_cards as c (organization_id, id, iccid, imsi, carrier_id, state)
    select org, (sim_ids || lpad(to_hex(s.line_number), 12, '0'))::uuid, s.iccid, s.imsi, s.carrier_id, s.state from src s
    order by s.line_number
    on conflict (organization_id, iccid) do update
      set imsi = coalesce(excluded.imsi, c.imsi), carrier_id = excluded.carrier_id, state = excluded.state
      where (c.imsi, c.carrier_id, c.state) is distinct from (coalesce(excluded.imsi, c.imsi), excluded.carrier_id, excluded.state)
    returning (c.xmax = 0) as inserted
  )
  select count(*) filter (where inserted), count(*) filter (where not inserted), (select count(*) from src)
  into sim_created, sim_updated, sim_total from upserted;

  with src as (select distinct on (k.imei) k.imei, k.line_number from pg_temp.import_ok k where k.imei is not null order by k.imei, k.line_number),
  inserted as (
    insert into public.devices (organization_id, id, imei, compatibility)
    select org, (device_ids || lpad(to_hex(s.line_number), 12, '0'))::uuid, s.imei, 'compatible' from src s
    order by s.line_number
    on conflict (organization_id, imei) do nothing
    returning 1
  )
  select count(*), (select count(*) from src) into dev_created, dev_total from inserted;

  -- Lines, by the source's subscription id. Their state mirrors BeQuick's: the lines already
  -- exist on the carrier, so no carrier command is queued.
  drop table if exists pg_temp.import_lines;
  create temp table import_lines (line_number integer, subscriber_id uuid, inserted boolean, changed boolean) on commit drop;
  with src as (
    select k.line_number, k.subscriber_ref, a.id as account_id, k.mdn, k.carrier_id, k.line_status,
      case k.line_status when 'active' then 'active' when 'suspended' then 'suspended'
                         when 'cancelled' then 'deactivated' when 'ported_out' then 'deactivated' else 'none' end::public.network_status as network_status,
      c.id as sim_id, d.id as device_id, k.starts_at, k.ends_at,
      coalesce(k.created_date::timestamp at time zone k.time_zone, now()) as created_at
    from pg_temp.import_ok k
    join public.accounts a on a.organization_id = org and a.external_id = k.account_ref
    left join public.sim_cards c on c.organization_id = org and c.iccid = k.iccid
    left join public.devices d on d.organization_id = org and d.imei = k.imei
  ), upserted as (
    insert into public.subscribers as s (organization_id, id, external_id, account_id, mdn, carrier_id, status, network_status, suspend_reason,
                                         current_sim_id, current_device_id, activated_at, cancelled_at, created_at)
    select org, (line_ids || lpad(to_hex(x.line_number), 12, '0'))::uuid, x.subscriber_ref, x.account_id, x.mdn, x.carrier_id, x.line_status, x.network_status,
      case when x.line_status = 'suspended' then 'customer_request'::public.suspend_reason end,
      x.sim_id, x.device_id, case when x.line_status not in ('pending', 'failed') then x.starts_at end, x.ends_at, x.created_at
    from src x
    order by x.line_number
    on conflict (organization_id, external_id) do update
      set account_id = excluded.account_id, mdn = excluded.mdn, carrier_id = excluded.carrier_id, status = excluded.status,
          network_status = excluded.network_status,
          suspend_reason = case when excluded.status = 'suspended' then coalesce(s.suspend_reason, excluded.suspend_reason) end,
          current_sim_id = excluded.current_sim_id, current_device_id = excluded.current_device_id,
          activated_at = coalesce(s.activated_at, excluded.activated_at), cancelled_at = excluded.cancelled_at
      where (s.account_id, s.mdn, s.carrier_id, s.status, s.current_sim_id, s.current_device_id, s.cancelled_at)
            is distinct from (excluded.account_id, excluded.mdn, excluded.carrier_id, excluded.status, excluded.current_sim_id,
                              excluded.current_device_id, excluded.cancelled_at)
    returning s.id, s.external_id, (s.xmax = 0) as inserted
  )
  insert into pg_temp.import_lines (line_number, subscriber_id, inserted, changed)
  select k.line_number, coalesce(u.id, s.id), coalesce(u.inserted, false), u.id is not null
  from pg_temp.import_ok k
  left join upserted u on u.external_id = k.subscriber_ref
  left join public.subscribers s on u.id is null and s.organization_id = org and s.external_id = k.subscriber_ref;
  -- (A line the upsert left alone is not in `upserted`; the second join finds it.)
  analyze pg_temp.import_lines;
  select count(*) filter (where l.inserted), count(*) filter (where l.changed and not l.inserted), count(*)
  into sub_created, sub_updated, sub_total from pg_temp.import_lines l;

  -- Plans over time: close the open period when the plan changed or the line ended, then open
  -- the new one. An unchanged plan leaves the line's subscriptions alone.
  drop table if exists pg_temp.import_plans;
  create temp table import_plans on commit drop as
  select l.line_number, l.subscriber_id, k.plan_id, k.starts_at, k.ends_at, t.id as latest_id, t.plan_id as latest_plan_id, t.effective as latest_effective,
    null::timestamptz as closed_at
  from pg_temp.import_lines l
  join pg_temp.import_ok k on k.line_number = l.line_number
  left join lateral (
    select s.id, s.plan_id, s.effective from public.subscriptions s
    where s.organization_id = org and s.subscriber_id = l.subscriber_id
    order by lower(s.effective) desc limit 1) t on true;
  analyze pg_temp.import_plans;

  -- Close the open period when the plan changed (now, or when the line ended) or the line ended.
  with closed as (
    update public.subscriptions s
    set effective = tstzrange(lower(s.effective),
      case when w.plan_id <> w.latest_plan_id
           then greatest(least(coalesce(w.ends_at, now()), now()), lower(s.effective) + interval '1 second')
           else w.ends_at end, '[)')
    from pg_temp.import_plans w
    where s.organization_id = org and s.id = w.latest_id
      and ((w.plan_id <> w.latest_plan_id and upper_inf(w.latest_effective))
           or (w.plan_id = w.latest_plan_id and upper(w.latest_effective) is distinct from w.ends_at
               and w.ends_at > lower(w.latest_effective)))
    returning s.id, upper(s.effective) as closed_at
  )
  update pg_temp.import_plans w set closed_at = c.closed_at from closed c where w.latest_id = c.id;
  get diagnostics plan_closed = row_count;

  -- Open the new period: a line new to Wingtel from its start, a changed plan from the change.
  insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason, carrier_confirmed_at)
  select org, (plan_ids || lpad(to_hex(w.line_number), 12, '0'))::uuid, w.subscriber_id, w.plan_id,
    tstzrange(o.opens_at, case when w.ends_at > o.opens_at then w.ends_at end, '[)'),
    case when w.latest_id is null then 'migrated from BeQuick' else 'plan change in a BeQuick export' end,
    o.opens_at
  from pg_temp.import_plans w
  cross join lateral (select case when w.latest_id is null then w.starts_at else w.closed_at end as opens_at) o
  where (w.latest_id is null or (w.plan_id <> w.latest_plan_id and w.closed_at is not null))
    and (w.ends_at is null or w.ends_at > o.opens_at)
  order by w.line_number;
  get diagnostics plan_created = row_count;
  update pg_temp.import_lines l set changed = true
  from pg_temp.import_plans w
  where w.subscriber_id = l.subscriber_id and not l.changed and (w.closed_at is not null or w.latest_id is null);
  select count(*) filter (where w.latest_id is not null and w.closed_at is null) into plan_total from pg_temp.import_plans w;

  insert into public.subscriber_events (organization_id, subscriber_id, kind, reason, actor_name, details)
  select org, l.subscriber_id, 'migrated', 'imported from BeQuick', current_setting('wingtel.actor', true),
    jsonb_build_object('batch_id', batch, 'line_number', l.line_number, 'external_id', k.subscriber_ref, 'bequick_status', k.status_raw)
  from pg_temp.import_lines l join pg_temp.import_ok k on k.line_number = l.line_number
  where l.inserted;

  -- What became of each row: a line counts as updated when its account changed too.
  update pg_temp.import_lines l set changed = true
  from public.subscribers s
  where s.organization_id = org and s.id = l.subscriber_id and not l.changed
    and s.account_id in (select a.account_id from pg_temp.import_accounts a);
  analyze pg_temp.import_lines;
  update public.import_rows r
  set outcome = case when l.inserted then 'created' when l.changed then 'updated' else 'unchanged' end::public.import_outcome,
      subscriber_id = l.subscriber_id
  from pg_temp.import_lines l
  where r.organization_id = org and r.batch_id = batch and r.line_number = l.line_number;
  update public.import_rows r
  set outcome = case when r.parse_error is not null then 'rejected' else 'skipped' end::public.import_outcome, subscriber_id = null
  where r.organization_id = org and r.batch_id = batch
    and not exists (select 1 from pg_temp.import_lines l where l.line_number = r.line_number);

  -- Lines migrated by an earlier batch that this export no longer has: listed, not changed.
  insert into public.import_issues (organization_id, batch_id, line_number, issue_type, severity, column_name, value, message, subscriber_id)
  select org, batch, null, 'missing_from_export', 'warning', 'subscriber_ref', s.external_id,
    format('line %s (external id %s, %s) was migrated from an earlier export but is not in this one; review it (cancelled in BeQuick?)',
           coalesce(s.mdn, 'without MDN'), s.external_id, s.status),
    s.id
  from public.subscribers s
  where s.organization_id = org and s.external_id is not null
    and exists (select 1 from public.import_rows p where p.organization_id = org and p.subscriber_id = s.id and p.batch_id <> batch)
    and not exists (select 1 from public.import_rows r where r.organization_id = org and r.batch_id = batch
                      and btrim(r.subscriber_ref) = s.external_id)
    and not exists (select 1 from public.import_issues i where i.organization_id = org and i.batch_id = batch
                      and i.issue_type = 'missing_from_export' and i.subscriber_id = s.id);

  update public.import_batches b set migrated_at = now() where b.organization_id = org and b.id = batch;

  return query values
    ('rows', (select count(*) from public.import_rows r where r.organization_id = org and r.batch_id = batch and r.outcome = 'created'),
             (select count(*) from public.import_rows r where r.organization_id = org and r.batch_id = batch and r.outcome = 'updated'),
             (select count(*) from public.import_rows r where r.organization_id = org and r.batch_id = batch and r.outcome = 'unchanged'),
             rows_skipped + (select count(*) from public.import_rows r where r.organization_id = org and r.batch_id = batch and r.outcome = 'rejected')),
    ('accounts', acc_created, acc_updated, acc_total - acc_created - acc_updated, null::bigint),
    ('sim_cards', sim_created, sim_updated, sim_total - sim_created - sim_updated, null),
    ('devices', dev_created, 0::bigint, dev_total - dev_created, null),
    ('subscribers', sub_created, sub_updated, sub_total - sub_created - sub_updated, rows_skipped),
    ('subscriptions', plan_created, plan_closed, plan_total, null);
end;
$$;
comment on function public.migrate_subscriber_data(uuid, uuid) is 'Migrates a staged batch (admins), validating it first if needed: accounts, SIMs, devices, lines and plans created or updated by the source''s ids; rows with blocking issues skipped; lines that disappeared since an earlier export listed in import_issues. Idempotent. Returns counts per entity.';
revoke all on function public.migrate_subscriber_data(uuid, uuid) from public, anon;
grant execute on function public.migrate_subscriber_data(uuid, uuid) to authenticated, service_role;
