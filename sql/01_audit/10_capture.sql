-- Audit capture: statement-level triggers with transition tables write one entry per
-- changed row in a single set-based insert (no per-row trigger calls).

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
  key_expression text;
  join_condition text;
  table_label text := tg_table_schema || '.' || tg_table_name;
  actor_id uuid := auth.uid();
  actor text := nullif(current_setting('wingtel.actor', true), '');
  request text := nullif(current_setting('wingtel.request_id', true), '');
  -- The role the caller acts as (SET ROLE survives security definer; current_user does not).
  acting_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
begin
  select string_agg(format('%L, r.%I', k, k), ', '), string_agg(format('o.%1$I is not distinct from n.%1$I', k), ' and ')
    into key_expression, join_condition
    from unnest(key_columns) as k;
  key_expression := 'jsonb_build_object(' || key_expression || ')';

  if tg_op = 'INSERT' then
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_key, new_values)
       select r.%1$I, $1, $2, $7, $3, ''insert'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from new_rows r',
      org_column, key_expression)
    using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  elsif tg_op = 'DELETE' then
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_key, old_values)
       select r.%1$I, $1, $2, $7, $3, ''delete'', $4, $5, %2$s, to_jsonb(r) - $6::text[] from old_rows r',
      org_column, key_expression)
    using actor_id, actor, request, entry_category, table_label, excluded, acting_role;
  else
    -- Only the columns that changed, old and new; rows updated to identical values are skipped.
    execute format(
      'insert into audit.entries (organization_id, actor_user_id, actor_name, db_role, request_id, action, category, table_name, record_key, old_values, new_values)
       select d.org, $1, $2, $7, $3, ''update'', $4, $5, d.record_key, d.old_values, d.new_values
       from (
         select r.%1$I as org, %2$s as record_key,
                (select jsonb_object_agg(o_col.key, o_col.value) from jsonb_each(o_json) o_col
                  where o_col.value is distinct from n_json -> o_col.key) as old_values,
                (select jsonb_object_agg(n_col.key, n_col.value) from jsonb_each(n_json) n_col
                  where n_col.value is distinct from o_json -> n_col.key) as new_values
         from (select n.*, to_jsonb(o) - $6::text[] as o_json, to_jsonb(n) - $6::text[] as n_json
               from old_rows o join new_rows n on %3$s) r
       ) d
       where d.new_values is not null',
      org_column, key_expression, join_condition)
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
