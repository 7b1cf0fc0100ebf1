-- Small, deterministic data for `supabase db reset` users and the pgTAP and Swift tests.
-- Fixed UUIDs so tests can name rows. Large demo data comes from `wingtel seed demo`.
--
-- Two organizations, each with one member of every staff role and one self-service
-- customer, plus a user who belongs nowhere:
--   org A  10000000-0000-4000-8000-00000000000a  acme-mobile
--   org B  10000000-0000-4000-8000-00000000000b  bolt-wireless
--   staff  a0000000-…-00000000000N (A) and b0000000-…-00000000000N (B), N = 1 owner, 2 admin,
--          3 operator, 4 agent, 5 analyst, 6 viewer; emails <role>@acme.test / <role>@bolt.test
--   customers c0000000-…-00000000000a / …0b (customer@acme.test / customer@bolt.test),
--          linked to accounts ac000000-…-00000000000a / …0b
--   outsider d0000000-0000-4000-8000-000000000001 (outsider@example.test)
select set_config('wingtel.actor', 'supabase/seed.sql', true);

insert into auth.users (id, email, aud, role)
select ('a0000000-0000-4000-8000-00000000000' || n)::uuid, r || '@acme.test', 'authenticated', 'authenticated'
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n)
union all
select ('b0000000-0000-4000-8000-00000000000' || n)::uuid, r || '@bolt.test', 'authenticated', 'authenticated'
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n)
union all
values ('c0000000-0000-4000-8000-00000000000a'::uuid, 'customer@acme.test', 'authenticated', 'authenticated'),
       ('c0000000-0000-4000-8000-00000000000b'::uuid, 'customer@bolt.test', 'authenticated', 'authenticated'),
       ('d0000000-0000-4000-8000-000000000001'::uuid, 'outsider@example.test', 'authenticated', 'authenticated');

insert into public.organizations (id, slug, name, currency, time_zone, created_by) values
  ('10000000-0000-4000-8000-00000000000a', 'acme-mobile', 'Acme Mobile', 'USD', 'America/New_York', 'a0000000-0000-4000-8000-000000000001'),
  ('10000000-0000-4000-8000-00000000000b', 'bolt-wireless', 'Bolt Wireless', 'USD', 'America/Chicago', 'b0000000-0000-4000-8000-000000000001');

insert into public.organization_members (organization_id, user_id, role)
select '10000000-0000-4000-8000-00000000000a'::uuid, ('a0000000-0000-4000-8000-00000000000' || n)::uuid, r::public.member_role
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n)
union all
select '10000000-0000-4000-8000-00000000000b'::uuid, ('b0000000-0000-4000-8000-00000000000' || n)::uuid, r::public.member_role
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n);

insert into public.customer_identities (organization_id, user_id, account_id) values
  ('10000000-0000-4000-8000-00000000000a', 'c0000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a'),
  ('10000000-0000-4000-8000-00000000000b', 'c0000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b');

-- Open invitations; the tokens are 'seed-invitation-acme' and 'seed-invitation-bolt'.
insert into public.organization_invitations (organization_id, id, email, role, token_hash, invited_by) values
  ('10000000-0000-4000-8000-00000000000a', '1a000000-0000-4000-8000-000000000001', 'newcomer@acme.test', 'agent',
   sha256(convert_to('seed-invitation-acme', 'UTF8')), 'a0000000-0000-4000-8000-000000000001'),
  ('10000000-0000-4000-8000-00000000000b', '1b000000-0000-4000-8000-000000000001', 'newcomer@bolt.test', 'agent',
   sha256(convert_to('seed-invitation-bolt', 'UTF8')), 'b0000000-0000-4000-8000-000000000001');
