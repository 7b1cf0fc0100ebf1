-- Structure guards: rules every table and function must keep, including those added later
-- (ARCHITECTURE.md §4 and §7). A new table or function that breaks one fails here.
begin;
select plan(9);

select is(
  array(select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'audit') and c.relkind in ('r', 'p') and not c.relrowsecurity order by 1),
  '{}'::text[],
  'every table in an exposed schema (public, audit) has row-level security enabled');

select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private', 'audit') and p.prosecdef
          and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')
        order by 1),
  '{}'::text[],
  'every security-definer function fixes its search_path');

select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private', 'audit') and p.prosecdef
          and exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%' and c not in ('search_path=""', 'search_path='))
        order by 1),
  '{}'::text[],
  'security-definer functions use search_path = '''' (fully qualified names)');

-- Tenant tables: organization_id is the first column of the primary key.
select is(
  array(select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'audit') and c.relkind in ('r', 'p')
          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped)
          and not exists (
            select 1 from pg_constraint k join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
            where k.conrelid = c.oid and k.contype = 'p' and a.attname = 'organization_id')
        order by 1),
  '{}'::text[],
  'every tenant table has organization_id as the first column of its primary key');

-- Foreign keys between tenant tables carry organization_id (what makes them valid when distributed by it).
select is(
  array(select k.conname::text from pg_constraint k
        where k.contype = 'f'
          and exists (select 1 from pg_attribute a where a.attrelid = k.conrelid and a.attname = 'organization_id')
          and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid and a.attname = 'organization_id')
          and not exists (select 1 from unnest(k.conkey) as ck join pg_attribute a on a.attrelid = k.conrelid and a.attnum = ck
                          where a.attname = 'organization_id')
        order by 1),
  '{}'::text[],
  'every foreign key between tenant tables includes organization_id');

-- Policies call auth.uid() and the private helpers through a sub-select (evaluated once per statement).
select is(
  array(select format('%s on %I.%I', p.policyname, p.schemaname, p.tablename) from pg_policies p
        where regexp_replace(coalesce(p.qual, '') || ' ' || coalesce(p.with_check, ''),
                             'SELECT (auth|private)\.[a-z_]+\([^)]*\)', '', 'g') ~ '(auth|private)\.[a-z_]+\('
        order by 1),
  '{}'::text[],
  'policies wrap auth.uid() and private helpers in (select …)');

select is(
  array(select format('%s on %I.%I', p.policyname, p.schemaname, p.tablename) from pg_policies p
        where p.schemaname in ('public', 'audit') and not (p.roles <@ array['authenticated', 'service_role']::name[])
        order by 1),
  '{}'::text[],
  'policies are granted to authenticated (or narrower), never to public or anon');

select is(
  array(select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'audit') and c.relkind in ('r', 'p', 'v', 'm') and obj_description(c.oid, 'pg_class') is null
        order by 1),
  '{}'::text[],
  'every table and view analysts can reach has a comment');

select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private', 'audit') and p.prokind in ('f', 'p') and obj_description(p.oid, 'pg_proc') is null
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        order by 1),
  '{}'::text[],
  'every function has a comment');

select * from finish();
rollback;
