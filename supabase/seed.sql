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
-- and for each organization (suffix …0a for A, …0b for B) a small catalog and one live line:
--   carriers ca100000 Verizon (ThingSpace limits), ca200000 AT&T, ca300000 T-Mobile
--   carrier rate plans cb100000 (Verizon 5 GB), cb200000 (Verizon unlimited)
--   plans ba100000 talk-text $15, ba200000 5 GB $25, ba300000 unlimited $45, ba400000 retired
--   add-ons ad100000 2 GB pack, ad200000 international
--   accounts ac000000 (the customer's), ac100000 (no login)
--   SIMs 51000000 (on the line), 52000000 and 53000000 (inventory, physical and eSIM)
--   devices de100000 (on the line), de200000 (BYOD, spare)
--   line 5b100000: active on Verizon, plan 5 GB, MDN +1312555010x (A: …0101, B: …0102)
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

insert into public.organizations (id, slug, name, currency, time_zone, created_by, settings) values
  ('10000000-0000-4000-8000-00000000000a', 'acme-mobile', 'Acme Mobile', 'USD', 'America/New_York', 'a0000000-0000-4000-8000-000000000001',
   '{"self_service": {"change_plan": true, "add_add_on": true, "report_lost": true}}'),
  ('10000000-0000-4000-8000-00000000000b', 'bolt-wireless', 'Bolt Wireless', 'USD', 'America/Chicago', 'b0000000-0000-4000-8000-000000000001',
   '{"self_service": {"report_lost": true}}');

insert into public.organization_members (organization_id, user_id, role)
select '10000000-0000-4000-8000-00000000000a'::uuid, ('a0000000-0000-4000-8000-00000000000' || n)::uuid, r::public.member_role
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n)
union all
select '10000000-0000-4000-8000-00000000000b'::uuid, ('b0000000-0000-4000-8000-00000000000' || n)::uuid, r::public.member_role
from unnest(array['owner', 'admin', 'operator', 'agent', 'analyst', 'viewer']) with ordinality as t (r, n);


-- The subscriber domain, the same shape in both organizations.
insert into public.carriers (organization_id, id, code, name, adapter, max_actions_per_line_per_day, max_plan_changes_per_month, allows_plan_change_while_suspended)
select o.id, ('ca' || n || '00000-0000-4000-8000-00000000000' || o.s)::uuid, c.code, c.name, c.adapter::public.carrier_adapter, c.daily, c.monthly, c.suspended_ok
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values (1, 'verizon', 'Verizon', 'thingspace', 5, 4, false),
                   (2, 'att', 'AT&T', 'att_control_center', null, null, true),
                   (3, 'tmobile', 'T-Mobile (aggregator)', 'tmobile_aggregator', null, null, true)) as c (n, code, name, adapter, daily, monthly, suspended_ok);

insert into public.carrier_rate_plans (organization_id, id, carrier_id, code, name, monthly_cost_cents, included_data_mb, included_voice_minutes, included_sms, overage_data_cents_per_mb, pooled)
select o.id, ('cb' || r.n || '00000-0000-4000-8000-00000000000' || o.s)::uuid, ('ca100000-0000-4000-8000-00000000000' || o.s)::uuid,
       r.code, r.name, r.cost, r.data_mb, null, null, r.overage, r.pooled
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values (1, 'VZW-5GB-POOL', 'Verizon 5 GB pooled', 900, 5120, 0.0100, true),
                   (2, 'VZW-UNL', 'Verizon unlimited', 1800, null, 0, false)) as r (n, code, name, cost, data_mb, overage, pooled);

insert into public.plans (organization_id, id, code, name, price_cents, data_mb, voice_minutes, sms, overage_data_cents_per_gb, carrier_rate_plan_id, status, self_service)
select o.id, ('ba' || p.n || '00000-0000-4000-8000-00000000000' || o.s)::uuid, p.code, p.name, p.price, p.data_mb, null, null, p.overage,
       ('cb' || p.rate || '00000-0000-4000-8000-00000000000' || o.s)::uuid, p.status::public.plan_status, p.self_service
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values (1, 'TALK-TEXT', 'Talk & Text + 1 GB', 1500, 1024, 1000, 1, 'active', true),
                   (2, 'DATA-5', '5 GB', 2500, 5120, 1000, 1, 'active', true),
                   (3, 'UNLIMITED', 'Unlimited', 4500, null, 0, 2, 'active', false),
                   (4, 'LEGACY-2', 'Legacy 2 GB (retired)', 2000, 2048, 1500, 1, 'retired', false)) as p (n, code, name, price, data_mb, overage, rate, status, self_service);

insert into public.add_ons (organization_id, id, code, name, kind, recurrence, price_cents, data_mb)
select o.id, ('ad' || a.n || '00000-0000-4000-8000-00000000000' || o.s)::uuid, a.code, a.name, a.kind::public.add_on_kind, a.rec::public.recurrence, a.price, a.data_mb
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values (1, 'DATA-2GB', '2 GB data pack', 'data_pack', 'one_off', 1000, 2048),
                   (2, 'INTL', 'International calling', 'international', 'monthly', 500, null)) as a (n, code, name, kind, rec, price, data_mb);

insert into public.accounts (organization_id, id, external_id, name, email, phone, address_line1, city, state, postal_code, county, billing_day)
select o.id, ('ac' || a.n || '-0000-4000-8000-00000000000' || o.s)::uuid, a.ext || o.s, a.name, a.email || o.domain, a.phone, a.street, a.city, a.state, a.zip, a.county, a.day
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', 'acme.test'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', 'bolt.test')) as o (id, s, domain)
cross join (values ('000000', 'BQ-1001-', 'Dana Reyes', 'customer@', '+13125550142', '233 S Wacker Dr', 'Chicago', 'IL', '60606', 'Cook', 5),
                   ('100000', 'BQ-1002-', 'Sam Ortiz', 'sam@', '+17185550117', '1 Main St', 'Brooklyn', 'NY', '11201', 'Kings', 15)) as a (n, ext, name, email, phone, street, city, state, zip, county, day);

insert into public.sim_cards (organization_id, id, iccid, kind, eid, imsi, carrier_id, state)
select o.id, (s.prefix || '000000-0000-4000-8000-00000000000' || o.s)::uuid, s.iccid, s.kind::public.sim_kind, s.eid, s.imsi,
       ('ca100000-0000-4000-8000-00000000000' || o.s)::uuid, s.state::public.sim_state
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values ('51', '89012600000000000011', 'physical', null, '311480000000011', 'active'),
                   ('52', '89012600000000000029', 'physical', null, null, 'inventory'),
                   ('53', '89012600000000000037', 'esim', '89049032000000000000000000000123', null, 'inventory')) as s (prefix, iccid, kind, eid, imsi, state);

insert into public.devices (organization_id, id, imei, make, model, byod, compatibility)
select o.id, (d.prefix || '00000-0000-4000-8000-00000000000' || o.s)::uuid, d.imei, d.make, d.model, d.byod, 'compatible'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values ('de1', '353918100000013', 'Apple', 'iPhone 15', false),
                   ('de2', '353918100000021', 'Google', 'Pixel 8', true)) as d (prefix, imei, make, model, byod);

insert into public.subscribers (organization_id, id, account_id, mdn, carrier_id, status, network_status, current_sim_id, current_device_id, external_id, activated_at)
select o.id, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, ('ac000000-0000-4000-8000-00000000000' || o.s)::uuid, o.mdn,
       ('ca100000-0000-4000-8000-00000000000' || o.s)::uuid, 'active', 'active',
       ('51000000-0000-4000-8000-00000000000' || o.s)::uuid, ('de100000-0000-4000-8000-00000000000' || o.s)::uuid,
       'BQ-SUB-' || o.s, timestamptz '2026-01-05 15:00:00+00'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', '+13125550101'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', '+13125550102')) as o (id, s, mdn);

insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason, carrier_confirmed_at)
select o.id, ('cc100000-0000-4000-8000-00000000000' || o.s)::uuid, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid,
       ('ba200000-0000-4000-8000-00000000000' || o.s)::uuid, tstzrange('2026-01-05 15:00:00+00', null, '[)'), 'activation', '2026-01-05 15:01:00+00'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);

insert into public.subscriber_add_ons (organization_id, id, subscriber_id, add_on_id, effective)
select o.id, ('a0d00000-0000-4000-8000-00000000000' || o.s)::uuid, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid,
       ('ad200000-0000-4000-8000-00000000000' || o.s)::uuid, tstzrange('2026-02-01 00:00:00+00', null, '[)')
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);

insert into public.port_requests (organization_id, id, subscriber_id, direction, mdn, other_carrier, account_number, pin, status, requested_at, completed_at)
select o.id, ('b0100000-0000-4000-8000-00000000000' || o.s)::uuid, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid,
       'in', o.mdn, 'Old Mobile', 'OLD-ACCT-7781', '2468', 'completed', '2026-01-05 14:00:00+00', '2026-01-05 15:00:00+00'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', '+13125550101'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', '+13125550102')) as o (id, s, mdn);

insert into public.notes (organization_id, id, account_id, subscriber_id, body, author_id, created_at)
select o.id, ('ee100000-0000-4000-8000-00000000000' || o.s)::uuid, ('ac000000-0000-4000-8000-00000000000' || o.s)::uuid,
       ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, 'Customer asked about international rates; added INTL.',
       (o.s_user || '0000000-0000-4000-8000-000000000004')::uuid, '2026-02-01 10:00:00+00'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', 'b')) as o (id, s, s_user);

insert into public.carrier_commands (organization_id, id, subscriber_id, carrier_id, kind, payload, idempotency_key, status, attempts, carrier_request_id, result, created_at, completed_at)
select o.id, ('cd100000-0000-4000-8000-00000000000' || o.s)::uuid, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid,
       ('ca100000-0000-4000-8000-00000000000' || o.s)::uuid, 'port_in', jsonb_build_object('mdn', o.mdn, 'iccid', '89012600000000000011'),
       'seed:port_in:' || o.s, 'succeeded', 1, 'vz-req-' || o.s, jsonb_build_object('requestId', 'vz-req-' || o.s),
       '2026-01-05 14:00:00+00', '2026-01-05 15:00:00+00'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', '+13125550101'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', '+13125550102')) as o (id, s, mdn);

insert into public.subscriber_events (organization_id, subscriber_id, occurred_at, kind, actor_name, command_id, details)
select o.id, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, e.at, e.kind, 'supabase/seed.sql',
       ('cd100000-0000-4000-8000-00000000000' || o.s)::uuid, '{}'::jsonb
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values (timestamptz '2026-01-05 14:00:00+00', 'port_in_requested'), (timestamptz '2026-01-05 15:00:00+00', 'port_in_confirmed')) as e (at, kind);


-- Usage: one carrier file per organization with two records, a rollup and one quarantined row.
select private.ensure_usage_partition('2026-01-01');
insert into public.usage_batches (organization_id, id, source, file_name, rows_total, rows_inserted, rows_quarantined)
select o.id, ('ba7c0000-0000-4000-8000-00000000000' || o.s)::uuid, 'verizon', 'usage-2026-01-06.csv', 3, 2, 1
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);
insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
select o.id, 'verizon', r.record_id, r.at, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, r.kind::public.usage_kind, r.quantity,
       ('ba7c0000-0000-4000-8000-00000000000' || o.s)::uuid
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values ('vz-0001', timestamptz '2026-01-06 14:00:00+00', 'data', 734003200),
                   ('vz-0002', timestamptz '2026-01-06 18:30:00+00', 'voice', 420)) as r (record_id, at, kind, quantity);
insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
select o.id, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, date '2026-01-06', 734003200, 420, 0
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);
insert into public.usage_quarantine (organization_id, batch_id, line_number, raw, reason)
select o.id, ('ba7c0000-0000-4000-8000-00000000000' || o.s)::uuid, 4,
       '{"mdn": "+13125550199", "kind": "data", "quantity": 1024, "record_id": "vz-0003"}', 'no line with MDN +13125550199'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);

insert into public.customer_identities (organization_id, user_id, account_id) values
  ('10000000-0000-4000-8000-00000000000a', 'c0000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a'),
  ('10000000-0000-4000-8000-00000000000b', 'c0000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b');

-- Open invitations; the tokens are 'seed-invitation-acme' and 'seed-invitation-bolt'.
insert into public.organization_invitations (organization_id, id, email, role, token_hash, invited_by) values
  ('10000000-0000-4000-8000-00000000000a', '1a000000-0000-4000-8000-000000000001', 'newcomer@acme.test', 'agent',
   sha256(convert_to('seed-invitation-acme', 'UTF8')), 'a0000000-0000-4000-8000-000000000001'),
  ('10000000-0000-4000-8000-00000000000b', '1b000000-0000-4000-8000-000000000001', 'newcomer@bolt.test', 'agent',
   sha256(convert_to('seed-invitation-bolt', 'UTF8')), 'b0000000-0000-4000-8000-000000000001');

-- Billing: a policy, tax and fee rates for the two accounts' jurisdictions, a discount, an
-- activation fee, then the February 2026 bill run, payments (one declined), a credit note,
-- a wallet top-up and a dunning run — all through the billing functions.
insert into public.billing_policies (organization_id)
values ('10000000-0000-4000-8000-00000000000a'), ('10000000-0000-4000-8000-00000000000b');

insert into public.tax_rates (organization_id, id, code, name, kind, state, county, percent, per_line_cents)
select o.id, (t.prefix || '-0000-4000-8000-00000000000' || o.s)::uuid, t.code, t.name, t.kind::public.tax_kind, t.state, t.county, t.percent, t.per_line
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s)
cross join (values ('7a100000', 'US-USF', 'Federal Universal Service Fund', 'usf', null, null, 13.6, null),
                   ('7a200000', 'IL-SALES', 'Illinois sales tax', 'sales_tax', 'IL', null, 6.25, null),
                   ('7a300000', 'IL-COOK', 'Cook County sales tax', 'sales_tax', 'IL', 'Cook', 1.75, null),
                   ('7a400000', 'IL-E911', 'Illinois 911 surcharge', 'e911', 'IL', null, null, 150),
                   ('7a500000', 'NY-SALES', 'New York sales tax', 'sales_tax', 'NY', null, 4.0, null),
                   ('7a600000', 'NY-E911', 'New York 911 surcharge', 'e911', 'NY', null, null, 120))
  as t (prefix, code, name, kind, state, county, percent, per_line);

insert into public.account_discounts (organization_id, id, account_id, description, percent_off, starts_on)
select o.id, ('d1500000-0000-4000-8000-00000000000' || o.s)::uuid, ('ac100000-0000-4000-8000-00000000000' || o.s)::uuid,
       'Loyalty 10%', 10, date '2026-01-01'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as o (id, s);

insert into public.account_charges (organization_id, id, account_id, subscriber_id, kind, description, amount_cents, charge_on, created_by)
select o.id, ('c4a00000-0000-4000-8000-00000000000' || o.s)::uuid, ('ac000000-0000-4000-8000-00000000000' || o.s)::uuid,
       ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, 'one_off', 'Activation fee', 2500, date '2026-01-05', o.staff
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', 'a0000000-0000-4000-8000-000000000004'::uuid),
             ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', 'b0000000-0000-4000-8000-000000000004'::uuid)) as o (id, s, staff);

select public.run_bill_cycle(o.id, date '2026-02-01', timestamptz '2026-02-20 12:00:00+00')
from (values ('10000000-0000-4000-8000-00000000000a'::uuid), ('10000000-0000-4000-8000-00000000000b'::uuid)) as o (id);

-- A: past due, then paid after a declined card; a goodwill credit goes to the wallet.
select public.run_dunning('10000000-0000-4000-8000-00000000000a', timestamptz '2026-03-08 12:00:00+00');
select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 6000, 'seed-declined-a',
                             'card', 'stripe', 'ch_seed_declined_a', false, 'card_declined', 'Your card was declined.', timestamptz '2026-03-09 10:00:00+00');
select public.record_payment('10000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', i.total_cents, 'seed-paid-a',
                             'card', 'stripe', 'ch_seed_paid_a', true, null, null, timestamptz '2026-03-09 10:05:00+00')
from public.invoices i where i.organization_id = '10000000-0000-4000-8000-00000000000a';
select public.issue_credit_note('10000000-0000-4000-8000-00000000000a', i.id, 500, 'Goodwill: network outage 2026-02-12')
from public.invoices i where i.organization_id = '10000000-0000-4000-8000-00000000000a';

-- B: a credit note, a partial wallet top-up that pays part of the invoice, and dunning.
select public.issue_credit_note('10000000-0000-4000-8000-00000000000b', i.id, 300, 'Billing correction')
from public.invoices i where i.organization_id = '10000000-0000-4000-8000-00000000000b';
select public.top_up_wallet('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 1000, 'seed-top-up-b');
select public.record_payment('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 2000, 'seed-partial-b',
                             'ach', 'zift', 'zift-seed-1', true, null, null, timestamptz '2026-03-01 09:00:00+00');
select public.run_dunning('10000000-0000-4000-8000-00000000000b', timestamptz '2026-03-14 12:00:00+00');

-- Autopay: each organization's first account has a saved card (A with Stripe, B with Zift) and
-- one charge of it that succeeded: the payment recorded above. Autopay itself stays off, so the
-- scheduler queues nothing for the seed.
insert into public.payment_methods (organization_id, id, account_id, provider, token, provider_customer_id, brand, last4, exp_month, exp_year, is_default)
values ('10000000-0000-4000-8000-00000000000a', '9a000000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-00000000000a', 'stripe',
        'pm_seedVisa4242', 'cus_seedAcme', 'visa', '4242', 12, 2030, true),
       ('10000000-0000-4000-8000-00000000000b', '9a000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', 'zift',
        'zift-tok-seed-b', null, 'mastercard', '4444', 6, 2029, true);
insert into public.payment_charges (organization_id, id, account_id, invoice_id, payment_method_id, provider, origin, amount_cents, currency,
                                    idempotency_key, status, sends, provider_payment_id, payment_id, finished_at, created_at)
select p.organization_id, ('9c000000-0000-4000-8000-00000000000' || right(p.organization_id::text, 1))::uuid, p.account_id, i.id,
       ('9a000000-0000-4000-8000-00000000000' || right(p.organization_id::text, 1))::uuid, p.provider, 'staff', p.amount_cents, p.currency,
       'seed-charge-' || right(p.organization_id::text, 1), 'succeeded', 1, p.provider_payment_id, p.id, p.received_at, p.received_at
from public.payments p
join public.invoices i on i.organization_id = p.organization_id and i.account_id = p.account_id
where p.idempotency_key in ('seed-paid-a', 'seed-partial-b');

-- SMS: each organization's number, a HELP exchange and a free-text message waiting in the
-- care inbox, and one opted-out number (what the Twilio webhook would have written).
insert into public.messaging_numbers (organization_id, id, phone_number, label)
select o.id, ('3e000000-0000-4000-8000-00000000000' || o.s)::uuid, o.number, 'Customer care'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', '+13125550900'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', '+13125550901')) as o (id, s, number);

insert into public.sms_messages (organization_id, id, direction, provider_sid, from_number, to_number, body, status, account_id, subscriber_id, keyword, routed_to, in_reply_to, created_at)
select o.id, m.id::uuid, m.direction::public.sms_direction, m.sid || o.s, case when m.direction = 'inbound' then o.mdn else o.number end,
       case when m.direction = 'inbound' then o.number else o.mdn end, m.body, m.status::public.sms_status,
       ('ac000000-0000-4000-8000-00000000000' || o.s)::uuid, ('5b100000-0000-4000-8000-00000000000' || o.s)::uuid, m.keyword, m.routed_to,
       m.reply_to::uuid, m.at::timestamptz
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a', '+13125550101', '+13125550900'),
             ('10000000-0000-4000-8000-00000000000b'::uuid, 'b', '+13125550102', '+13125550901')) as o (id, s, mdn, number)
cross join lateral (values
  ('5e100000-0000-4000-8000-00000000000' || o.s, 'inbound', 'SMseed0001', 'HELP', 'received', 'HELP', null, null, '2026-03-02 18:00:00+00'),
  ('5e200000-0000-4000-8000-00000000000' || o.s, 'outbound', 'SMseed0002', 'Reply BAL for your balance, USAGE for usage, STOP to unsubscribe.', 'delivered', null, null,
   '5e100000-0000-4000-8000-00000000000' || o.s, '2026-03-02 18:00:01+00'),
  ('5e300000-0000-4000-8000-00000000000' || o.s, 'inbound', 'SMseed0003', 'My data stopped working this morning', 'received', null, 'care', null, '2026-03-03 08:15:00+00')
) as m (id, direction, sid, body, status, keyword, routed_to, reply_to, at);

insert into public.sms_opt_outs (organization_id, phone_number, keyword, opted_out_at)
values ('10000000-0000-4000-8000-00000000000a', '+13125550177', 'STOP', '2026-03-04 12:00:00+00'),
       ('10000000-0000-4000-8000-00000000000b', '+13125550178', 'STOP', '2026-03-04 12:00:00+00');

-- A staged BeQuick import in each organization (one row, one issue), so that row-level
-- security on the import tables is tested like every other tenant table.
insert into public.import_batches (organization_id, id, shape, file_name, file_sha256, row_count, imported_by)
select o, ('b9000000-0000-4000-8000-00000000000' || k)::uuid, 'staging', 'seed-export.csv', repeat(k, 64), 1, 'supabase/seed.sql'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as t (o, k);
insert into public.import_rows (organization_id, batch_id, line_number, subscriber_ref, first_name, last_name, mdn, status, plan_name)
select o, ('b9000000-0000-4000-8000-00000000000' || k)::uuid, 2, 'BQ-SEED-' || k, 'Seed', 'Customer', '3125550199', 'zombie', '5 GB'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as t (o, k);
insert into public.import_issues (organization_id, batch_id, line_number, issue_type, severity, column_name, value, message)
select o, ('b9000000-0000-4000-8000-00000000000' || k)::uuid, 2, 'unknown_status', 'blocking', 'status', 'zombie',
  'status "zombie" is not a known BeQuick line state'
from (values ('10000000-0000-4000-8000-00000000000a'::uuid, 'a'), ('10000000-0000-4000-8000-00000000000b'::uuid, 'b')) as t (o, k);
