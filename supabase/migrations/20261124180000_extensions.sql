-- Extensions Wingtel uses, all shipped by both Supabase and the local PostgreSQL 18 build
-- (ARCHITECTURE.md §4, "Portable SQL"). They live in the `extensions` schema, as on Supabase.
create extension if not exists vector with schema extensions;
create extension if not exists pg_trgm with schema extensions;
create extension if not exists btree_gist with schema extensions;
create extension if not exists citext with schema extensions;

-- Internal schema for security-definer helpers that policies call; never exposed by the API.
create schema private;
comment on schema private is 'Security-definer helpers used by row-level security policies; not exposed through the API.';
revoke all on schema private from public;

-- Deny by default: functions created from here on are not executable by PUBLIC; each is
-- granted next to its definition to the narrowest role (STYLE.md, SQL).
alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema private revoke execute on functions from public;
do $$
begin
  -- On Supabase (and the local shim) the API roles get EXECUTE on new public functions by
  -- default; take that back so every function is granted on purpose.
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    alter default privileges in schema public revoke execute on functions from anon, authenticated;
  end if;
end
$$;
