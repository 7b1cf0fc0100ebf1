-- The Supabase shim, part 1: the API roles every Supabase project has.
-- Applied by `wingtel db start|reset` and the test harness to a plain PostgreSQL,
-- never to a Supabase project (which has these already). Roles are cluster-wide, so
-- this file is idempotent: it runs again for every database the harness provisions.

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    -- PostgREST logs in as authenticator and switches to the role named by the JWT.
    -- The local password is the local superuser's, as in `supabase start`.
    create role authenticator login noinherit password 'postgres';
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

-- Supabase resolves unqualified extension objects (vector, pgTAP) through `extensions`.
alter role postgres set search_path = "$user", public, extensions;
alter role anon set search_path = "$user", public, extensions;
alter role authenticated set search_path = "$user", public, extensions;
alter role service_role set search_path = "$user", public, extensions;
alter role authenticator set search_path = "$user", public, extensions;

-- PostgREST's request timeouts on Supabase.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
