-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/01_audit/10_capture.sql (sha256 b9717367cb312967c91c03eb1592a5074342e1d8609ed1d37529565dd17e6933)
-- Audit capture: statement-level triggers with transition tables write one entry per
-- changed row in a single set-based insert (no per-row trigger calls). Updates are
-- compared column by column and stored as aligned text arrays (no whole-row JSON), which
-- keeps a bulk update's audit cost near the cost of the update itself (benchmarks/).

create or replace function audit.capture()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- Trigger arguments: organization column, category, key columns (comma-separated), excluded columns.
  org_column text := tg_argv[0];
  entry_category text := tg_argv[1];
  key_columns text[] := string_to_array(tg_argv[2], ',');
  excluded text[] := coalesce(string_to_array(nullif(tg_argv[3], ''), ','), '{}');
  record_id_expression text;
  join_condition text;
  names_expression text;
  old_expression text;
  new_expression text;
  changed_any text;
  table_label text := tg_table_schema || '.' || tg_table_name;
  actor_id uuid := auth.uid();
  actor text := nullif(current_setting('wingtel.actor', true), '');
  request text := nullif(current_setting('wingtel.request_id', true), '');
  -- The role the caller acts as (SET ROLE survives security definer; current_user does not).
  acting_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
begin
  -- Key columns are primary-key columns (never null): old and new rows pair up by hash join.
  select concat_ws(' || '','' || ', variadic array_agg(format('r.%I::text', k)) filter (where k <> org_column)),
         string_agg(format('o.%1$I = n.%1$I', k), ' and ')
    into record_id_expression, join_condition
    from unnest(key_columns) as k;
  record_id_expression := coalesce(record_id_expression, format('r.%I::text', org_column));

  if tg_op = 'INSERT' then
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''insert'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from new_rows r',
      org_column, record_id_expression)
    using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  elsif tg_op = 'DELETE' then
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''delete'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from old_rows r',
      org_column, record_id_expression)
    using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  else
    -- One array slot per column (read from the catalog at each statement, so columns added
    -- later are covered); null where the column did not change.
    select 'array[' || string_agg(format('case when %s then %L end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           'array[' || string_agg(format('case when %s then o.%I::text end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           'array[' || string_agg(format('case when %s then n.%I::text end', changed, a.attname), ', ' order by a.attnum) || ']::text[]',
           string_agg(changed, ' or ')
      into names_expression, old_expression, new_expression, changed_any
      from pg_catalog.pg_attribute a
      cross join lateral (
        select case when exists (select 1 from pg_catalog.pg_operator op
                                 where op.oprname = '=' and op.oprleft = a.atttypid and op.oprright = a.atttypid)
                    then format('o.%1$I is distinct from n.%1$I', a.attname)
                    else format('o.%1$I::text is distinct from n.%1$I::text', a.attname) end as changed) c
     where a.attrelid = tg_relid and a.attnum > 0 and not a.attisdropped and a.attname <> all (excluded);
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, changed_columns, old_values, new_values)
       select n.%1$I, $1, $2, $7, $3, ''update'', $4, $5, %2$s, %3$s, %4$s, %5$s
       from old_rows o join new_rows n on %6$s
       where %7$s',
      org_column, replace(record_id_expression, 'r.', 'n.'), names_expression, old_expression, new_expression,
      join_condition, changed_any)
    using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  end if;
  return null;
end;
$$;
comment on function audit.capture() is 'Statement-level trigger: appends one audit entry per changed row (set-based, from transition tables). Arguments: organization column, category, key columns, excluded columns.';
revoke all on function audit.capture() from public;

-- Turns auditing on for a table: three statement-level triggers (insert, update, delete).
create or replace function audit.enable(
  target regclass,
  category text,
  org_column text default 'organization_id',
  key_columns text[] default array['organization_id', 'id'],
  excluded_columns text[] default '{}'
)
returns void
language plpgsql
set search_path = ''
as $$
declare
  args text := format('%L, %L, %L, %L', org_column, category, array_to_string(key_columns, ','), array_to_string(excluded_columns, ','));
begin
  if category not in ('customer_care', 'operations', 'catalog', 'administration', 'billing') then
    raise exception 'unknown audit category "%"', category
      using errcode = '22023', hint = 'Use customer_care, operations, catalog, billing or administration.';
  end if;
  execute format('create or replace trigger audit_insert after insert on %s referencing new table as new_rows for each statement execute function audit.capture(%s)', target, args);
  execute format('create or replace trigger audit_update after update on %s referencing old table as old_rows new table as new_rows for each statement execute function audit.capture(%s)', target, args);
  execute format('create or replace trigger audit_delete after delete on %s referencing old table as old_rows for each statement execute function audit.capture(%s)', target, args);
end;
$$;
comment on function audit.enable(regclass, text, text, text[], text[]) is 'Attaches the audit triggers to a business table. Call it in the migration that creates the table.';
revoke all on function audit.enable(regclass, text, text, text[], text[]) from public;

-- Audit rows are never changed or removed, by any role (privileges are revoked too).
create or replace function audit.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'audit records are append-only: % on %.% is not allowed', tg_op, tg_table_schema, tg_table_name
    using errcode = '42501';
end;
$$;
revoke all on function audit.forbid_change() from public;

create or replace trigger entries_append_only before update or delete on audit.entries
  for each row execute function audit.forbid_change();
create or replace trigger entries_no_truncate before truncate on audit.entries
  for each statement execute function audit.forbid_change();
create or replace trigger seals_append_only before update or delete on audit.seals
  for each row execute function audit.forbid_change();
create or replace trigger seals_no_truncate before truncate on audit.seals
  for each statement execute function audit.forbid_change();

-- What analysts and the activity feed read: old and new values as JSON objects.
create or replace view audit.changes with (security_invoker = true) as
select e.organization_id, e.id, e.occurred_at, e.actor_user_id, e.actor_name, e.db_role, e.request_id,
       e.action, e.category, e.table_name, e.record_id,
       case e.action
         when 'delete' then e.row_data
         when 'update' then (select jsonb_object_agg(u.name, u.old) from unnest(e.changed_columns, e.old_values) as u (name, old)
                             where u.name is not null)
       end as old_values,
       case e.action
         when 'insert' then e.row_data
         when 'update' then (select jsonb_object_agg(u.name, u.new) from unnest(e.changed_columns, e.new_values) as u (name, new)
                             where u.name is not null)
       end as new_values
from audit.entries e;
comment on view audit.changes is 'Audit entries with old and new values as JSON objects (on update, only the changed columns; values as text). Row-level security of audit.entries applies.';

-- >>> sql/01_audit/20_chain.sql (sha256 c5097761ec47197b43e240234ed2aec1003f778f71a6b2f99df0bdc0e60f15f5)
-- The hash chain. Entries are sealed after their transaction has finished, in sealing
-- order, so concurrent writers never wait on one another for the chain:
--   content_hash(e) = sha256(canonical text of e)
--   chain_hash(1)   = sha256(sha256('wingtel-audit:' || organization_id) || content_hash(e1))
--   chain_hash(n)   = sha256(chain_hash(n-1) || content_hash(en))

create or replace function audit.content_hash(e audit.entries)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(pg_catalog.convert_to(concat_ws(chr(31),
    e.organization_id::text, e.id::text,
    ((extract(epoch from e.occurred_at) * 1000000)::bigint)::text,
    e.txid::text, coalesce(e.actor_user_id::text, '\N'), coalesce(e.actor_name, '\N'), e.db_role,
    coalesce(e.request_id, '\N'), e.action, e.category, e.table_name, e.record_id,
    coalesce(e.row_data::text, '\N'), coalesce(e.changed_columns::text, '\N'),
    coalesce(e.old_values::text, '\N'), coalesce(e.new_values::text, '\N')), 'UTF8'))
$$;
comment on function audit.content_hash(audit.entries) is 'SHA-256 of an entry''s canonical text (every column, NULL spelled \N).';

create or replace function audit.genesis_hash(organization_id uuid)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(pg_catalog.convert_to('wingtel-audit:' || organization_id::text, 'UTF8'))
$$;

create or replace function audit.chain_step(state bytea, content bytea, seed bytea)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(coalesce(state, seed) || content)
$$;

-- Running hash over a window: chain(content, seed) over (order by …).
create or replace aggregate audit.chain(bytea, bytea) (sfunc = audit.chain_step, stype = bytea);

create or replace function audit.seal(target_organization uuid default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid;
  sealed bigint := 0;
  added bigint;
  horizon xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
begin
  for org in
    select distinct e.organization_id from audit.entries e
    where (target_organization is null or e.organization_id = target_organization)
      and not exists (select 1 from audit.seals s where s.organization_id = e.organization_id and s.entry_id = e.id)
    order by 1
  loop
    insert into audit.chain_heads (organization_id, last_seq, last_hash)
      values (org, 0, audit.genesis_hash(org))
      on conflict (organization_id) do nothing;
    -- One sealer per organization at a time.
    perform 1 from audit.chain_heads h where h.organization_id = org for update;

    with head as (
      select h.last_seq, h.last_hash from audit.chain_heads h where h.organization_id = org
    ), pending as (
      select e.id, audit.content_hash(e) as content,
             row_number() over (order by e.id) as n
      from audit.entries e
      where e.organization_id = org
        and e.txid < horizon
        and not exists (select 1 from audit.seals s where s.organization_id = org and s.entry_id = e.id)
    ), chained as (
      select p.id, (select last_seq from head) + p.n as chain_seq,
             audit.chain(p.content, (select last_hash from head)) over (order by p.n rows between unbounded preceding and current row) as chain_hash
      from pending p
    ), inserted as (
      insert into audit.seals (organization_id, chain_seq, entry_id, chain_hash)
      select org, c.chain_seq, c.id, c.chain_hash from chained c
      returning chain_seq, chain_hash
    ), newest as (
      select i.chain_seq, i.chain_hash from inserted i order by i.chain_seq desc limit 1
    ), moved as (
      update audit.chain_heads h
         set last_seq = n.chain_seq, last_hash = n.chain_hash, sealed_at = now()
        from newest n
       where h.organization_id = org
      returning 1
    )
    select count(*) into added from inserted;
    sealed := sealed + added;
  end loop;
  return sealed;
end;
$$;
comment on function audit.seal(uuid) is 'Adds the entries of finished transactions to their organization''s hash chain; returns how many were sealed. The server''s scheduler (or pg_cron) calls it every few seconds; verify_audit_chain calls it first.';
revoke all on function audit.seal(uuid) from public;
grant execute on function audit.seal(uuid) to service_role;

create or replace function audit.verify_chain(target_organization uuid)
returns table (
  valid boolean,
  sealed_entries bigint,
  unsealed_entries bigint,
  first_broken_entry bigint,
  first_broken_seq bigint,
  problem text
)
language plpgsql
security definer
set search_path = ''
as $$
declare
  broken record;
  total bigint;
  pending bigint;
  head record;
begin
  perform audit.seal(target_organization);

  select count(*) into total from audit.seals s where s.organization_id = target_organization;
  select count(*) into pending from audit.entries e
   where e.organization_id = target_organization
     and not exists (select 1 from audit.seals s where s.organization_id = e.organization_id and s.entry_id = e.id);

  -- Recompute every link from the entries themselves and compare with the stored chain.
  select x.entry_id, x.chain_seq, x.reason into broken
  from (
    select s.entry_id, s.chain_seq,
           case
             when e.id is null then 'entry missing'
             when s.chain_seq <> row_number() over w then 'sequence gap before this seal'
             when s.chain_hash <> audit.chain(audit.content_hash(e), audit.genesis_hash(target_organization))
                                    over (w rows between unbounded preceding and current row)
               then 'content or chain hash does not match'
           end as reason
    from audit.seals s
    left join audit.entries e on e.organization_id = s.organization_id and e.id = s.entry_id
    where s.organization_id = target_organization
    window w as (order by s.chain_seq)
  ) x
  where x.reason is not null
  order by x.chain_seq
  limit 1;

  if broken.entry_id is not null then
    return query select false, total, pending, broken.entry_id, broken.chain_seq, broken.reason;
    return;
  end if;

  select h.last_seq, h.last_hash into head from audit.chain_heads h where h.organization_id = target_organization;
  if total > 0 and (head.last_seq is distinct from total
      or head.last_hash is distinct from (select s.chain_hash from audit.seals s
                                          where s.organization_id = target_organization order by s.chain_seq desc limit 1)) then
    return query select false, total, pending, null::bigint, head.last_seq, 'chain head does not match the newest seal (seals removed?)';
    return;
  end if;
  return query select true, total, pending, null::bigint, null::bigint, null::text;
end;
$$;
comment on function audit.verify_chain(uuid) is 'Seals what can be sealed, then recomputes an organization''s chain from its entries; reports the first broken entry, if any.';
revoke all on function audit.verify_chain(uuid) from public;
grant execute on function audit.verify_chain(uuid) to service_role;

-- >>> sql/10_tenancy/10_helpers.sql (sha256 b4a1cddee653f68040ae36d5d34dfaf345e35486058e4ae1f58bdbc456f46e38)
-- Security-definer helpers that row-level security policies call. They live in `private`
-- (not exposed through the API), fix search_path to '' and qualify every name. Policies
-- call them wrapped in a sub-select, `(select private.user_org_ids())`, so each runs once
-- per statement (an InitPlan) instead of once per row, and they return arrays so that
-- `organization_id = any (…)` can use an index. They are parallel safe (they only read
-- tables and settings, which parallel workers receive), so a policy does not stop
-- PostgreSQL from using parallel workers for large scans.

grant usage on schema private to authenticated, service_role;

create or replace function private.user_org_ids(minimum public.member_role default 'viewer')
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(m.organization_id), '{}')
  from public.organization_members m
  where m.user_id = auth.uid() and m.role >= minimum
$$;
comment on function private.user_org_ids(public.member_role) is 'Organizations in which the caller is a member with at least the given role.';
revoke all on function private.user_org_ids(public.member_role) from public;
grant execute on function private.user_org_ids(public.member_role) to authenticated, service_role;

create or replace function private.user_role(organization_id uuid)
returns public.member_role
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select m.role from public.organization_members m
  where m.organization_id = user_role.organization_id and m.user_id = auth.uid()
$$;
comment on function private.user_role(uuid) is 'The caller''s role in an organization, or null when the caller is not a member.';
revoke all on function private.user_role(uuid) from public;
grant execute on function private.user_role(uuid) to authenticated, service_role;

create or replace function private.customer_account_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.account_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_account_ids() is 'Customer accounts the caller may see as a self-service customer.';
revoke all on function private.customer_account_ids() from public;
grant execute on function private.customer_account_ids() to authenticated, service_role;

create or replace function private.customer_org_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.organization_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_org_ids() is 'Organizations in which the caller is a self-service customer.';
revoke all on function private.customer_org_ids() from public;
grant execute on function private.customer_org_ids() to authenticated, service_role;

-- Raises 42501 unless the caller holds at least `minimum` in the organization; returns the role.
create or replace function private.require_role(organization_id uuid, minimum public.member_role)
returns public.member_role
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.user_role(require_role.organization_id);
begin
  if auth.uid() is null then
    raise exception 'not signed in' using errcode = '42501', hint = 'Call this as an authenticated user.';
  end if;
  if caller_role is null then
    raise exception 'you are not a member of organization %', require_role.organization_id using errcode = '42501';
  end if;
  if caller_role < minimum then
    raise exception 'this needs the % role or higher in the organization; you are %', minimum, caller_role
      using errcode = '42501';
  end if;
  return caller_role;
end;
$$;
comment on function private.require_role(uuid, public.member_role) is 'Guard for security-definer functions: the caller must hold at least the given role.';
revoke all on function private.require_role(uuid, public.member_role) from public;
grant execute on function private.require_role(uuid, public.member_role) to authenticated, service_role;

create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke all on function private.touch_updated_at() from public;

create or replace function private.check_organization()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'unknown time zone "%"', new.time_zone
      using errcode = '22023', hint = 'Use an IANA name such as America/New_York or America/Chicago.';
  end if;
  return new;
end;
$$;
revoke all on function private.check_organization() from public;

create or replace trigger organizations_check before insert or update of time_zone on public.organizations
  for each row execute function private.check_organization();
create or replace trigger organization_members_touch before update on public.organization_members
  for each row execute function private.touch_updated_at();

-- >>> sql/10_tenancy/20_members.sql (sha256 acbcafd88b574a341480be85ac0a67d128eef73797b094014092b7120b0d3484)
-- Organizations and their staff. These functions are the only way to change membership;
-- each checks the caller's own role. Errors: 42501 for permission, P0002 for something
-- that does not exist, P0001 for a business rule, 23505 for a duplicate.

create or replace function public.create_organization(
  slug text,
  name text,
  currency text default 'USD',
  time_zone text default 'America/New_York'
)
returns public.organizations
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  created public.organizations;
begin
  if caller is null then
    raise exception 'sign in to create an organization' using errcode = '42501';
  end if;
  begin
    insert into public.organizations (slug, name, currency, time_zone, created_by)
    values (lower(create_organization.slug), create_organization.name, upper(create_organization.currency),
            create_organization.time_zone, caller)
    returning * into created;
  exception when unique_violation then
    raise exception 'the organization slug "%" is taken', create_organization.slug
      using errcode = '23505', hint = 'Choose another slug.';
  end;
  insert into public.organization_members (organization_id, user_id, role) values (created.id, caller, 'owner');
  return created;
end;
$$;
comment on function public.create_organization(text, text, text, text) is 'Creates an organization; the caller becomes its owner.';
revoke all on function public.create_organization(text, text, text, text) from public, anon;
grant execute on function public.create_organization(text, text, text, text) to authenticated, service_role;

create or replace function public.add_organization_member(organization_id uuid, user_id uuid, role public.member_role)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(add_organization_member.organization_id, 'admin');
  added public.organization_members;
begin
  if add_organization_member.role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can make another owner' using errcode = '42501';
  end if;
  if not exists (select 1 from auth.users u where u.id = add_organization_member.user_id) then
    raise exception 'there is no user %', add_organization_member.user_id using errcode = 'P0002';
  end if;
  insert into public.organization_members (organization_id, user_id, role, invited_by)
  values (add_organization_member.organization_id, add_organization_member.user_id, add_organization_member.role, auth.uid())
  on conflict on constraint organization_members_pkey do nothing
  returning * into added;
  if added is null then
    raise exception 'user % is already a member', add_organization_member.user_id
      using errcode = '23505', hint = 'Use change_member_role to change their role.';
  end if;
  return added;
end;
$$;
comment on function public.add_organization_member(uuid, uuid, public.member_role) is 'Adds an existing user as staff. Admins and owners may; only an owner may add an owner.';
revoke all on function public.add_organization_member(uuid, uuid, public.member_role) from public, anon;
grant execute on function public.add_organization_member(uuid, uuid, public.member_role) to authenticated, service_role;

create or replace function public.change_member_role(organization_id uuid, user_id uuid, role public.member_role)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(change_member_role.organization_id, 'admin');
  current_role_of_member public.member_role;
  owners bigint;
  changed public.organization_members;
begin
  -- Lock the organization's owners so two owners cannot demote each other at once.
  select count(*) into owners from (
    select 1 from public.organization_members m
    where m.organization_id = change_member_role.organization_id and m.role = 'owner' for update) o;
  select m.role into current_role_of_member from public.organization_members m
   where m.organization_id = change_member_role.organization_id and m.user_id = change_member_role.user_id for update;
  if current_role_of_member is null then
    raise exception 'user % is not a member of organization %', change_member_role.user_id, change_member_role.organization_id
      using errcode = 'P0002';
  end if;
  if (change_member_role.role = 'owner' or current_role_of_member = 'owner') and caller_role <> 'owner' then
    raise exception 'only an owner can grant or take away the owner role' using errcode = '42501';
  end if;
  if current_role_of_member = 'owner' and change_member_role.role <> 'owner' and owners = 1 then
    raise exception 'the last owner cannot be demoted' using errcode = 'P0001', hint = 'Make another member owner first.';
  end if;
  update public.organization_members m set role = change_member_role.role
   where m.organization_id = change_member_role.organization_id and m.user_id = change_member_role.user_id
  returning * into changed;
  return changed;
end;
$$;
comment on function public.change_member_role(uuid, uuid, public.member_role) is 'Changes a member''s role. Admins and owners may; only owners touch the owner role; the last owner stays.';
revoke all on function public.change_member_role(uuid, uuid, public.member_role) from public, anon;
grant execute on function public.change_member_role(uuid, uuid, public.member_role) to authenticated, service_role;

create or replace function public.remove_organization_member(organization_id uuid, user_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  leaving_self boolean := remove_organization_member.user_id = auth.uid();
  caller_role public.member_role := private.require_role(
    remove_organization_member.organization_id, case when leaving_self then 'viewer'::public.member_role else 'admin' end);
  target_role public.member_role;
  owners bigint;
begin
  select count(*) into owners from (
    select 1 from public.organization_members m
    where m.organization_id = remove_organization_member.organization_id and m.role = 'owner' for update) o;
  select m.role into target_role from public.organization_members m
   where m.organization_id = remove_organization_member.organization_id and m.user_id = remove_organization_member.user_id for update;
  if target_role is null then
    raise exception 'user % is not a member of organization %', remove_organization_member.user_id, remove_organization_member.organization_id
      using errcode = 'P0002';
  end if;
  if target_role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can remove an owner' using errcode = '42501';
  end if;
  if target_role = 'owner' and owners = 1 then
    raise exception 'the last owner cannot leave the organization' using errcode = 'P0001',
      hint = 'Make another member owner first.';
  end if;
  delete from public.organization_members m
   where m.organization_id = remove_organization_member.organization_id and m.user_id = remove_organization_member.user_id;
end;
$$;
comment on function public.remove_organization_member(uuid, uuid) is 'Removes a member (admins and owners), or lets a member leave. The last owner cannot leave.';
revoke all on function public.remove_organization_member(uuid, uuid) from public, anon;
grant execute on function public.remove_organization_member(uuid, uuid) to authenticated, service_role;

create or replace function public.invite_member(organization_id uuid, email text, role public.member_role)
returns table (invitation_id uuid, token text, expires_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.require_role(invite_member.organization_id, 'admin');
  secret text := encode(pg_catalog.sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
  created public.organization_invitations;
begin
  if invite_member.role = 'owner' and caller_role <> 'owner' then
    raise exception 'only an owner can invite an owner' using errcode = '42501';
  end if;
  begin
    insert into public.organization_invitations (organization_id, email, role, token_hash, invited_by)
    values (invite_member.organization_id, invite_member.email, invite_member.role,
            pg_catalog.sha256(convert_to(secret, 'UTF8')), auth.uid())
    returning * into created;
  exception when unique_violation then
    raise exception 'an invitation to % is already open', invite_member.email
      using errcode = '23505', hint = 'Revoke it first (revoke_invitation) to send a new one.';
  when check_violation then
    raise exception '"%" is not an email address', invite_member.email using errcode = '22023';
  end;
  return query select created.id, secret, created.expires_at;
end;
$$;
comment on function public.invite_member(uuid, text, public.member_role) is 'Invites someone by email. Returns the token once (only its hash is stored); it expires after 7 days.';
revoke all on function public.invite_member(uuid, text, public.member_role) from public, anon;
grant execute on function public.invite_member(uuid, text, public.member_role) to authenticated, service_role;

create or replace function public.accept_invitation(token text)
returns public.organization_members
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  caller_email text;
  invitation public.organization_invitations;
  joined public.organization_members;
begin
  if caller is null then
    raise exception 'sign in to accept an invitation' using errcode = '42501';
  end if;
  select i.* into invitation from public.organization_invitations i
   where i.token_hash = pg_catalog.sha256(convert_to(accept_invitation.token, 'UTF8')) for update;
  if invitation.id is null then
    raise exception 'invitation not found' using errcode = 'P0002', hint = 'Check the link, or ask for a new invitation.';
  end if;
  if invitation.revoked_at is not null then
    raise exception 'this invitation was revoked' using errcode = 'P0001';
  end if;
  if invitation.accepted_at is not null then
    raise exception 'this invitation was already used' using errcode = 'P0001';
  end if;
  if invitation.expires_at <= now() then
    raise exception 'this invitation expired on %', invitation.expires_at using errcode = 'P0001', hint = 'Ask for a new invitation.';
  end if;
  select u.email into caller_email from auth.users u where u.id = caller;
  if caller_email is null or lower(caller_email) <> lower(invitation.email::text) then
    raise exception 'this invitation is for another email address' using errcode = '42501';
  end if;
  insert into public.organization_members as m (organization_id, user_id, role, invited_by)
  values (invitation.organization_id, caller, invitation.role, invitation.invited_by)
  on conflict on constraint organization_members_pkey
    do update set role = greatest(m.role, excluded.role)
  returning * into joined;
  update public.organization_invitations i set accepted_at = now(), accepted_by = caller
   where i.organization_id = invitation.organization_id and i.id = invitation.id;
  return joined;
end;
$$;
comment on function public.accept_invitation(text) is 'Joins the organization an invitation is for; the caller''s email must be the invited one.';
revoke all on function public.accept_invitation(text) from public, anon;
grant execute on function public.accept_invitation(text) to authenticated, service_role;

create or replace function public.revoke_invitation(organization_id uuid, invitation_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(revoke_invitation.organization_id, 'admin');
  update public.organization_invitations i set revoked_at = now()
   where i.organization_id = revoke_invitation.organization_id and i.id = revoke_invitation.invitation_id
     and i.accepted_at is null and i.revoked_at is null;
  if not found then
    raise exception 'no open invitation % in organization %', revoke_invitation.invitation_id, revoke_invitation.organization_id
      using errcode = 'P0002';
  end if;
end;
$$;
comment on function public.revoke_invitation(uuid, uuid) is 'Cancels an open invitation (admins and owners).';
revoke all on function public.revoke_invitation(uuid, uuid) from public, anon;
grant execute on function public.revoke_invitation(uuid, uuid) to authenticated, service_role;

create or replace function public.link_customer(organization_id uuid, user_id uuid, account_id uuid)
returns public.customer_identities
language plpgsql
security definer
set search_path = ''
as $$
declare
  linked public.customer_identities;
begin
  perform private.require_role(link_customer.organization_id, 'agent');
  if not exists (select 1 from auth.users u where u.id = link_customer.user_id) then
    raise exception 'there is no user %', link_customer.user_id using errcode = 'P0002';
  end if;
  insert into public.customer_identities as c (organization_id, user_id, account_id, created_by)
  values (link_customer.organization_id, link_customer.user_id, link_customer.account_id, auth.uid())
  on conflict on constraint customer_identities_pkey do update set account_id = excluded.account_id
  returning * into linked;
  return linked;
end;
$$;
comment on function public.link_customer(uuid, uuid, uuid) is 'Gives a login self-service access to one customer account (agents and above).';
revoke all on function public.link_customer(uuid, uuid, uuid) from public, anon;
grant execute on function public.link_customer(uuid, uuid, uuid) to authenticated, service_role;

create or replace function public.unlink_customer(organization_id uuid, user_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(unlink_customer.organization_id, 'agent');
  delete from public.customer_identities c
   where c.organization_id = unlink_customer.organization_id and c.user_id = unlink_customer.user_id;
  if not found then
    raise exception 'user % has no customer access in organization %', unlink_customer.user_id, unlink_customer.organization_id
      using errcode = 'P0002';
  end if;
end;
$$;
comment on function public.unlink_customer(uuid, uuid) is 'Removes a login''s self-service access (agents and above).';
revoke all on function public.unlink_customer(uuid, uuid) from public, anon;
grant execute on function public.unlink_customer(uuid, uuid) to authenticated, service_role;

-- >>> sql/10_tenancy/30_policies.sql (sha256 762629bc036fa630372f989660ff150580ded1b925bf94e01857aab0fc722380)
-- Row-level security for the tenancy tables. Reads are granted by policy; writes to
-- memberships, invitations and customer links go through the functions in 20_members.sql
-- (no write policy, so direct writes are refused). service_role bypasses RLS, as on Supabase.

revoke all on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities from anon;
revoke insert, update, delete, truncate, references, trigger on public.organizations, public.organization_members,
  public.organization_invitations, public.customer_identities from authenticated;
grant select on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities to authenticated;
-- Admins may rename and configure their organization, never change its id or slug.
grant update (name, currency, time_zone, settings) on public.organizations to authenticated;
grant delete on public.organizations to authenticated;
grant all on public.organizations, public.organization_members, public.organization_invitations,
  public.customer_identities to service_role;

drop policy if exists "Members and customers can view their organizations" on public.organizations;
create policy "Members and customers can view their organizations" on public.organizations
  for select to authenticated
  using (id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_org_ids())::uuid[]));

drop policy if exists "Admins can update their organization" on public.organizations;
create policy "Admins can update their organization" on public.organizations
  for update to authenticated
  using (id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Owners can delete their organization" on public.organizations;
create policy "Owners can delete their organization" on public.organizations
  for delete to authenticated
  using (id = any ((select private.user_org_ids('owner'))::uuid[]));

drop policy if exists "Members can view their organization's members" on public.organization_members;
create policy "Members can view their organization's members" on public.organization_members
  for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Admins can view their organization's invitations" on public.organization_invitations;
create policy "Admins can view their organization's invitations" on public.organization_invitations
  for select to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Customers see their own link; agents see their organization's" on public.customer_identities;
create policy "Customers see their own link; agents see their organization's" on public.customer_identities
  for select to authenticated
  using (user_id = (select auth.uid()) or organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

-- >>> sql/10_tenancy/40_audit.sql (sha256 5e396cfb854b989cbbdcfeffbb63a592ab6d77afed14d8b142eece428682025f)
-- Who reads the audit trail: admins and owners all of their organization's entries,
-- agents the customer-care entries; customers and anon nothing. Nobody but the capture
-- trigger writes it, and nobody changes or removes it.

grant usage on schema audit to authenticated, service_role;
revoke all on audit.entries, audit.changes, audit.seals, audit.chain_heads from public, anon, authenticated, service_role;
grant select on audit.entries, audit.changes to authenticated, service_role;
grant select on audit.seals, audit.chain_heads to service_role;

drop policy if exists "Admins read their organization's audit; agents its customer care" on audit.entries;
create policy "Admins read their organization's audit; agents its customer care" on audit.entries
  for select to authenticated
  using (
    organization_id = any ((select private.user_org_ids('admin'))::uuid[])
    or (category = 'customer_care' and organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  );

select audit.enable('public.organizations', 'administration', org_column => 'id', key_columns => array['id']);
select audit.enable('public.organization_members', 'administration', key_columns => array['organization_id', 'user_id']);
select audit.enable('public.organization_invitations', 'administration', excluded_columns => array['token_hash']);
select audit.enable('public.customer_identities', 'customer_care', key_columns => array['organization_id', 'user_id']);
