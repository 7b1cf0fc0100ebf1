-- BeQuick import: the value readers (dates, prices), and who may see and run a migration.
begin;
select plan(16);

create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;

-- Dates in the forms exports write; impossible days are null, not an error.
select is(public.parse_import_date('2026-03-01'), '2026-03-01'::date, 'ISO date');
select is(public.parse_import_date('2026-03-01 14:22:00'), '2026-03-01'::date, 'ISO date with a time');
select is(public.parse_import_date('03/01/2026'), '2026-03-01'::date, 'US order MM/DD/YYYY');
select is(public.parse_import_date('3/1/26'), '2026-03-01'::date, 'US order with a two-digit year');
select is(public.parse_import_date('01-Mar-2026'), '2026-03-01'::date, 'DD-Mon-YYYY');
select is(public.parse_import_date('Mar 1, 2026'), '2026-03-01'::date, 'Mon D, YYYY');
select is(public.parse_import_date('2024-02-29'), '2024-02-29'::date, 'a leap day');
select is(public.parse_import_date('2026-02-29'), null::date, 'no leap day in 2026');
select is(public.parse_import_date('13/45/2026'), null::date, 'an impossible day is null');
select is(public.parse_import_cents('$1,045.50'), 104550::bigint, 'prices with a dollar sign and thousands separator');
select is(public.parse_import_cents('free'), null::bigint, 'a word is not a price');

-- A batch staged in Acme: its admin sees it, an agent does not, Bolt's admin does not.
insert into public.import_batches (organization_id, id, shape, file_name, file_sha256)
values ('10000000-0000-4000-8000-00000000000a', 'b7000000-0000-4000-8000-00000000000a', 'staging', 'x.csv', repeat('0', 64));
select pg_temp.act_as('a0000000-0000-4000-8000-000000000002');
select is((select count(*) from public.import_batches where id = 'b7000000-0000-4000-8000-00000000000a'), 1::bigint, 'an admin sees the organization''s import batches');
reset role;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select is((select count(*) from public.import_batches), 0::bigint, 'an agent does not see import batches (they carry customer details)');
select throws_ok($$ select * from public.migrate_subscriber_data('10000000-0000-4000-8000-00000000000a', 'b7000000-0000-4000-8000-00000000000a') $$,
  '42501', null, 'an agent cannot migrate');
reset role;
select pg_temp.act_as('b0000000-0000-4000-8000-000000000002');
select is((select count(*) from public.import_batches where organization_id = '10000000-0000-4000-8000-00000000000a'), 0::bigint, 'another organization''s admin sees nothing of it');
select throws_ok($$ select * from public.validate_import_data('10000000-0000-4000-8000-00000000000a', 'b7000000-0000-4000-8000-00000000000a') $$,
  '42501', null, 'nor can it validate the batch');
reset role;

select * from finish();
rollback;
