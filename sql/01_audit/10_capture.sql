-- Audit capture: statement-level triggers with transition tables write one entry per
-- changed row in a single set-based insert (no per-row trigger calls). Updates are
-- compared column by column and stored as aligned text arrays (no whole-row JSON), which
-- keeps a bulk update's audit cost near the cost of the update itself (benchmarks/).

-- The INSERT into audit.entries for one table and operation, built from the catalog. Its
-- parameters: $1 actor user id, $2 actor name, $3 request id, $4 category, $5 table label,
-- $6 excluded columns, $7 acting role. It reads the transition tables new_rows / old_rows.
create or replace function audit.capture_statement(
  relid oid, operation text, org_column text, key_columns text[], excluded text[])
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  record_id_expression text;
  join_condition text;
  names_expression text;
  old_expression text;
  new_expression text;
  changed_any text;
begin
  -- Key columns are primary-key columns (never null): old and new rows pair up by hash join.
  select concat_ws(' || '','' || ', variadic array_agg(format('r.%I::text', k)) filter (where k <> org_column)),
         string_agg(format('o.%1$I = n.%1$I', k), ' and ')
    into record_id_expression, join_condition
    from unnest(key_columns) as k;
  record_id_expression := coalesce(record_id_expression, format('r.%I::text', org_column));

  if operation = 'INSERT' then
    return format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''insert'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from new_rows r',
      org_column, record_id_expression);
  elsif operation = 'DELETE' then
    return format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''delete'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from old_rows r',
      org_column, record_id_expression);
  end if;
  -- One array slot per column; null where the column did not change.
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
   where a.attrelid = relid and a.attnum > 0 and not a.attisdropped and a.attname <> all (excluded);
  return format(
    'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, changed_columns, old_values, new_values)
     select n.%1$I, $1, $2, $7, $3, ''update'', $4, $5, %2$s, %3$s, %4$s, %5$s
     from old_rows o join new_rows n on %6$s
     where %7$s',
    org_column, replace(record_id_expression, 'r.', 'n.'), names_expression, old_expression, new_expression,
    join_condition, changed_any);
end;
$$;
comment on function audit.capture_statement(oid, text, text, text[], text[]) is 'The audit INSERT for one table and operation (INSERT, UPDATE, DELETE), read from the catalog: columns compared one by one for updates, the whole row (less excluded columns) for inserts and deletes.';
revoke all on function audit.capture_statement(oid, text, text, text[], text[]) from public;

-- The generic trigger: builds the statement (kept for the session) and runs it dynamically.
-- Each table gets a compiled trigger of its own (audit.enable); this one remains for triggers
-- created before that existed.
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
  table_label text := tg_table_schema || '.' || tg_table_name;
  actor_id uuid := auth.uid();
  actor text := nullif(current_setting('wingtel.actor', true), '');
  request text := nullif(current_setting('wingtel.request_id', true), '');
  -- The role the caller acts as (SET ROLE survives security definer; current_user does not).
  acting_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
  cache_name text;
  statement text;
begin
  -- A statement that changed no row leaves no entry (statement triggers fire for zero rows too).
  if tg_op = 'DELETE' then
    if not exists (select 1 from old_rows) then return null; end if;
  elsif not exists (select 1 from new_rows) then
    return null;
  end if;
  -- The statement is kept in a session setting named after the xmin of the table's pg_class
  -- row, which every ALTER TABLE changes.
  cache_name := format('wingtel_audit.s%s_%s_%s_%s', tg_relid::int8, lower(tg_op),
                       (select c.xmin::text from pg_catalog.pg_class c where c.oid = tg_relid), md5(array_to_string(tg_argv, '|')));
  statement := nullif(current_setting(cache_name, true), '');
  if statement is null then
    statement := audit.capture_statement(tg_relid, tg_op, org_column, key_columns, excluded);
    perform set_config(cache_name, statement, false);
  end if;
  execute statement using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  return null;
end;
$$;
comment on function audit.capture() is 'Generic statement-level audit trigger: appends one audit entry per changed row (set-based, from transition tables). Arguments: organization column, category, key columns, excluded columns.';
revoke all on function audit.capture() from public;

-- A table's own trigger function, generated from audit.capture_statement with the statements
-- written out, so PL/pgSQL keeps their plans for the session (a dynamic statement is planned at
-- every firing: for a single-row UPDATE, most of the audit cost). It remembers the xmin of the
-- table's pg_class row; after an ALTER TABLE it takes the generic dynamic path, with the same
-- entries, until audit.enable (or audit.refresh) compiles it again.
create or replace function audit.compile(
  target regclass, category text, org_column text, key_columns text[], excluded_columns text[])
returns text
language plpgsql
set search_path = ''
as $$
declare
  schema_name text;
  table_name text;
  function_name text;
  placeholders text[] := array['audit_actor_id', 'audit_actor', 'audit_request', 'audit_category', 'audit_table', 'audit_excluded', 'audit_role'];
  statements text[] := '{}';
  operation text;
  statement text;
  version text;
begin
  select n.nspname, c.relname, c.xmin::text into schema_name, table_name, version
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  function_name := left('capture_' || schema_name || '_' || table_name, 63);
  foreach operation in array array['INSERT', 'UPDATE', 'DELETE'] loop
    statement := audit.capture_statement(target, operation, org_column, key_columns, excluded_columns);
    for i in reverse 7..1 loop
      statement := replace(statement, '$' || i, placeholders[i]);
    end loop;
    statements := statements || statement;
  end loop;
  execute format($f$
    create or replace function audit.%1$I()
    returns trigger
    language plpgsql
    security definer
    set search_path = ''
    as $body$
    declare
      audit_actor_id uuid := auth.uid();
      audit_actor text := nullif(current_setting('wingtel.actor', true), '');
      audit_request text := nullif(current_setting('wingtel.request_id', true), '');
      audit_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
      audit_category text := %2$L;
      audit_table text := %3$L;
      audit_excluded text[] := %4$L;
    begin
      if tg_op = 'DELETE' then
        if not exists (select 1 from old_rows) then return null; end if;
      elsif not exists (select 1 from new_rows) then
        return null;
      end if;
      if (select c.xmin::text from pg_catalog.pg_class c where c.oid = tg_relid) is distinct from %5$L then
        execute audit.capture_statement(tg_relid, tg_op, %6$L, %7$L, audit_excluded)
          using audit_actor_id, audit_actor, audit_request, audit_category, audit_table, audit_excluded, audit_role;
        return null;
      end if;
      if tg_op = 'INSERT' then
        %8$s;
      elsif tg_op = 'UPDATE' then
        %9$s;
      else
        %10$s;
      end if;
      return null;
    end;
    $body$
    $f$, function_name, category, schema_name || '.' || table_name, excluded_columns, version, org_column, key_columns,
    statements[1], statements[2], statements[3]);
  execute format('revoke all on function audit.%I() from public', function_name);
  execute format('comment on function audit.%I() is %L', function_name,
                 format('Audit trigger of %s.%s, compiled by audit.enable (category %s).', schema_name, table_name, category));
  return function_name;
end;
$$;
comment on function audit.compile(regclass, text, text, text[], text[]) is 'Generates a table''s own audit trigger function (static statements, plans kept per session); returns its name.';
revoke all on function audit.compile(regclass, text, text, text[], text[]) from public;

-- Turns auditing on for a table: three statement-level triggers (insert, update, delete) on a
-- trigger function compiled for it. Running it again recompiles (after an ALTER TABLE).
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
  function_name text;
begin
  if category not in ('customer_care', 'operations', 'catalog', 'administration', 'billing') then
    raise exception 'unknown audit category "%"', category
      using errcode = '22023', hint = 'Use customer_care, operations, catalog, billing or administration.';
  end if;
  function_name := audit.compile(target, category, org_column, key_columns, excluded_columns);
  execute format('create or replace trigger audit_insert after insert on %s referencing new table as new_rows for each statement execute function audit.%I()', target, function_name);
  execute format('create or replace trigger audit_update after update on %s referencing old table as old_rows new table as new_rows for each statement execute function audit.%I()', target, function_name);
  execute format('create or replace trigger audit_delete after delete on %s referencing old table as old_rows for each statement execute function audit.%I()', target, function_name);
  -- Creating the triggers may have touched the table's pg_class row: compile against what it is now.
  perform audit.compile(target, category, org_column, key_columns, excluded_columns);
  -- The arguments, for audit.refresh.
  execute format('comment on trigger audit_insert on %s is %L', target,
                 jsonb_build_object('category', category, 'org_column', org_column, 'key_columns', key_columns,
                                    'excluded_columns', excluded_columns)::text);
end;
$$;
comment on function audit.enable(regclass, text, text, text[], text[]) is 'Attaches the audit triggers to a business table (a trigger function compiled for it). Call it in the migration that creates the table; again after altering it, or run audit.refresh().';
revoke all on function audit.enable(regclass, text, text, text[], text[]) from public;

-- Recompiles every audited table's trigger. Run after migrations that altered audited tables
-- (until then their triggers take the slower generic path, with the same entries); tables still
-- on the generic audit.capture(...) triggers move to compiled ones.
create or replace function audit.refresh()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  audited record;
  compiled integer := 0;
begin
  for audited in
    select t.tgrelid::regclass as target,
           coalesce(d.description::jsonb, case when t.tgnargs = 4 then jsonb_build_object(
             'org_column', split_part(encode(t.tgargs, 'escape'), '\000', 1),
             'category', split_part(encode(t.tgargs, 'escape'), '\000', 2),
             'key_columns', to_jsonb(string_to_array(split_part(encode(t.tgargs, 'escape'), '\000', 3), ',')),
             'excluded_columns', to_jsonb(coalesce(string_to_array(nullif(split_part(encode(t.tgargs, 'escape'), '\000', 4), ''), ','), '{}'))) end) as args
    from pg_catalog.pg_trigger t
    left join pg_catalog.pg_description d on d.objoid = t.oid and d.classoid = 'pg_catalog.pg_trigger'::regclass
    where t.tgname = 'audit_insert' and not t.tgisinternal
  loop
    continue when audited.args is null;
    perform audit.enable(audited.target, audited.args ->> 'category', audited.args ->> 'org_column',
      array(select jsonb_array_elements_text(audited.args -> 'key_columns')),
      array(select jsonb_array_elements_text(audited.args -> 'excluded_columns')));
    compiled := compiled + 1;
  end loop;
  return compiled;
end;
$$;
comment on function audit.refresh() is 'Recompiles the audit triggers of every audited table; returns how many. Run it after migrations that alter audited tables (wingtel db push does).';
revoke all on function audit.refresh() from public;

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

-- Compile the triggers of the tables audited so far (a database upgraded to compiled triggers).
select audit.refresh();
