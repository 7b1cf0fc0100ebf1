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
