-- The local Supabase shim behaves as Supabase does (ARCHITECTURE.md §5).
begin;
select plan(14);

select has_role('anon');
select has_role('authenticated');
select has_role('service_role');
select has_role('authenticator');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');
select ok(not (select rolbypassrls from pg_roles where rolname = 'authenticated'), 'authenticated does not bypass RLS');
select has_extension('extensions', 'vector', 'pgvector lives in the extensions schema');

-- No claims: no user.
select is(auth.uid(), null, 'auth.uid() is null without claims');

select set_config('request.jwt.claims',
  '{"sub":"5f1c8a52-9a1e-4c6f-8a9e-2f4b7c1d3e5a","role":"authenticated","email":"ana@example.com"}', true);
select is(auth.uid(), '5f1c8a52-9a1e-4c6f-8a9e-2f4b7c1d3e5a'::uuid, 'auth.uid() reads sub from request.jwt.claims');
select is(auth.role(), 'authenticated', 'auth.role() reads role');
select is(auth.email(), 'ana@example.com', 'auth.email() reads email');
select is(auth.jwt() ->> 'email', 'ana@example.com', 'auth.jwt() returns the claims');

-- The older per-claim setting wins, as in Supabase.
select set_config('request.jwt.claim.sub', '0d9c7b1a-1111-4222-8333-944455556666', true);
select is(auth.uid(), '0d9c7b1a-1111-4222-8333-944455556666'::uuid, 'request.jwt.claim.sub takes precedence');

select has_table('supabase_migrations', 'schema_migrations', 'migration history is kept as the Supabase CLI keeps it');

select * from finish();
rollback;
