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
