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
  -- The statement for this table, operation and trigger arguments is built from the catalog
  -- once per session and kept in a session setting. Its name carries the xmin of the table's
  -- pg_class row, which every ALTER TABLE changes: a table whose columns changed gets a new
  -- statement. (Building it costs catalog queries; for single-row changes that was most of the
  -- trigger's time.)
  cache_name text := format('wingtel_audit.s%s_%s_%s_%s', tg_relid::oid::int8, lower(tg_op),
                            (select c.xmin::text from pg_catalog.pg_class c where c.oid = tg_relid), md5(array_to_string(tg_argv, '|')));
  statement text := nullif(current_setting(cache_name, true), '');
begin
  -- A statement that changed no row (an UPDATE … WHERE that matched nothing) leaves no entry;
  -- say so before any other work (statement-level triggers fire for zero rows too).
  if tg_op = 'DELETE' then
    if not exists (select 1 from old_rows) then return null; end if;
  elsif not exists (select 1 from new_rows) then
    return null;
  end if;
  if statement is not null then
    execute statement using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
    return null;
  end if;
  -- Key columns are primary-key columns (never null): old and new rows pair up by hash join.
  select concat_ws(' || '','' || ', variadic array_agg(format('r.%I::text', k)) filter (where k <> org_column)),
         string_agg(format('o.%1$I = n.%1$I', k), ' and ')
    into record_id_expression, join_condition
    from unnest(key_columns) as k;
  record_id_expression := coalesce(record_id_expression, format('r.%I::text', org_column));

  if tg_op = 'INSERT' then
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''insert'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from new_rows r',
      org_column, record_id_expression);
  elsif tg_op = 'DELETE' then
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, row_data)
       select r.%1$I, $1, $2, $7, $3, ''delete'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from old_rows r',
      org_column, record_id_expression);
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
    statement := format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_id, changed_columns, old_values, new_values)
       select n.%1$I, $1, $2, $7, $3, ''update'', $4, $5, %2$s, %3$s, %4$s, %5$s
       from old_rows o join new_rows n on %6$s
       where %7$s',
      org_column, replace(record_id_expression, 'r.', 'n.'), names_expression, old_expression, new_expression,
      join_condition, changed_any);
  end if;
  perform set_config(cache_name, statement, false);
  execute statement using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
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
