-- Usage ingestion: re-deliveries count once, problems are quarantined with a reason, daily
-- rollups follow, and partitions appear for new months.
begin;
select plan(24);

-- What `wingtel usage ingest` does before calling ingest_usage: fill the session's staging table.
create function pg_temp.stage(rows_json jsonb) returns void language plpgsql as $$
begin
  drop table if exists pg_temp.usage_staging;
  create temp table usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text, quantity bigint, record_id text, problem text);
  execute 'insert into pg_temp.usage_staging select * from jsonb_populate_recordset(null::pg_temp.usage_staging, $1)' using rows_json;
end;
$$;

select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-03-01T10:00:00Z", "kind": "data", "quantity": 1048576, "record_id": "f1-1"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-03-01T23:30:00Z", "kind": "sms", "quantity": 1, "record_id": "f1-2"},
  {"line_number": 4, "mdn": "+13125550101", "recorded_at": "2026-03-02T08:00:00Z", "kind": "voice", "quantity": 60, "record_id": "f1-3"},
  {"line_number": 5, "mdn": "+13125550177", "recorded_at": "2026-03-02T08:00:00Z", "kind": "data", "quantity": 5, "record_id": "f1-4"},
  {"line_number": 6, "mdn": "+13125550101", "recorded_at": "2026-03-02T08:00:00Z", "kind": "data", "quantity": -5, "record_id": "f1-5"},
  {"line_number": 7, "mdn": "+13125550101", "recorded_at": "2099-01-01T00:00:00Z", "kind": "data", "quantity": 5, "record_id": "f1-6"},
  {"line_number": 8, "problem": "line 8: expected 5 columns, found 3"}
]');
create temp table first_batch on commit drop as
  select * from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'verizon', 'march.csv', 'abc123');
select results_eq($$ select rows_total, rows_inserted, rows_duplicate, rows_quarantined from first_batch $$,
  $$ values (7, 3, 0, 4) $$, 'three records taken, four quarantined');
select is((select to_regclass('partitions.usage_records_y2026m03') is not null), true, 'the March partition was created');
select results_eq($$ select line_number, reason from public.usage_quarantine where batch_id = (select id from first_batch) order by line_number $$,
  $$ values (5, 'no line with MDN +13125550177'), (6, 'negative quantity -5'),
            (7, 'usage dated in the future (2099-01-01 00:00:00+00)'), (8, 'line 8: expected 5 columns, found 3') $$,
  'each problem is kept with its line and reason');
select results_eq($$ select day::text, data_bytes, voice_seconds, sms_count from public.usage_daily
                     where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day >= '2026-03-01' order by day $$,
  $$ values ('2026-03-01', 1048576::bigint, 0::bigint, 1::bigint), ('2026-03-02', 0::bigint, 60::bigint, 0::bigint) $$,
  'daily rollups follow the organization''s time zone (New York): 23:30 UTC is still 1 March... and 08:00 UTC is 2 March');

-- The same file again: nothing new.
select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-03-01T10:00:00Z", "kind": "data", "quantity": 1048576, "record_id": "f1-1"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-03-01T23:30:00Z", "kind": "sms", "quantity": 1, "record_id": "f1-2"},
  {"line_number": 4, "mdn": "+13125550101", "recorded_at": "2026-03-02T08:00:00Z", "kind": "voice", "quantity": 60, "record_id": "f1-3"}
]');
select results_eq($$ select rows_total, rows_inserted, rows_duplicate from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'verizon', 'march.csv', 'abc123') $$,
  $$ values (3, 0, 3) $$, 'a file delivered twice counts once');
select is((select data_bytes from public.usage_daily where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-03-01'),
  1048576::bigint, 'and the rollups do not double');
select is((select count(*) from public.usage_records where organization_id = '10000000-0000-4000-8000-00000000000a' and source_record_id like 'f1-%'),
  3::bigint, 'three records stored in all');

-- A record of a cancelled line with that number is still attributed to it.
select pg_temp.stage('[{"line_number": 2, "mdn": "+13125550102", "recorded_at": "2026-03-03T10:00:00Z", "kind": "sms", "quantity": 2, "record_id": "b-1"}]');
select is((select rows_inserted from public.ingest_usage('10000000-0000-4000-8000-00000000000b', 'verizon')), 1, 'another organization''s number resolves in that organization');

-- Who may ingest and read.
create function pg_temp.act_as(who uuid) returns void language sql as $$
  select set_config('request.jwt.claims', json_build_object('sub', who, 'role', 'authenticated')::text, true);
  set local role authenticated;
$$;
grant select on pg_temp.usage_staging to authenticated;
select pg_temp.act_as('a0000000-0000-4000-8000-000000000004');
select throws_ok($$ select public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'verizon') $$,
  '42501', 'this needs the operator role or higher in the organization; you are agent', 'agents cannot load usage');
select throws_ok($$ insert into public.usage_records values ('10000000-0000-4000-8000-00000000000a', 'x', 'x', now(), '5b100000-0000-4000-8000-00000000000a', 'sms', 1, gen_random_uuid()) $$,
  '42501', null, 'nobody writes usage directly');
reset role;
select pg_temp.act_as('c0000000-0000-4000-8000-00000000000a');
select is((select count(distinct subscriber_id) from public.usage_daily), 1::bigint, 'a customer reads their own line''s usage');
reset role;
select throws_ok($$ select count(*) from partitions.usage_records_y2026m03 $$, '42501', null,
  'partitions are not reachable around the parent''s row-level security')
  from (select set_config('role', 'authenticated', true)) x;
reset role;


-- The callbacks' path: records as JSON, each checked like a file's line.
select throws_ok($$ select public.ingest_usage_records('10000000-0000-4000-8000-00000000000a', 'verizon', '{"mdn": "x"}') $$,
  '22023', 'usage records come as a JSON array', 'records must be an array');
create temp table json_batch on commit drop as
  select * from public.ingest_usage_records('10000000-0000-4000-8000-00000000000a', 'tmobile', '[
    {"mdn": "+13125550101", "recorded_at": "2026-03-05T10:00:00Z", "kind": "data", "quantity": 2048, "record_id": "cb-1"},
    {"mdn": "+13125550101", "recorded_at": "2026-03-05", "kind": "sms", "quantity": "2", "record_id": "cb-2"},
    {"mdn": "+13125550101", "recorded_at": "2026-02-30T10:00:00Z", "kind": "data", "quantity": 1, "record_id": "cb-3"},
    {"mdn": "+13125550101", "recorded_at": "2026-03-05T10:00:00Z", "kind": "fax", "quantity": 1, "record_id": "cb-4"},
    {"mdn": "+13125550101", "recorded_at": "2026-03-05T10:00:00Z", "kind": "data", "quantity": "lots", "record_id": "cb-5"},
    {"mdn": "+13125550101", "recorded_at": "2026-03-05T10:00:00Z", "kind": "data", "quantity": 1},
    "not an object"
  ]', 'callback tm-9');
select results_eq($$ select rows_total, rows_inserted, rows_quarantined, file_name from json_batch $$,
  $$ values (7, 2, 5, 'callback tm-9') $$, 'two records taken, five quarantined, the batch names the callback');
select results_eq($$ select line_number, reason from public.usage_quarantine where batch_id = (select id from json_batch) order by line_number $$,
  $$ values (3, 'recorded_at 2026-02-30T10:00:00Z is not a timestamp'), (4, 'kind fax is not data, voice or sms'),
            (5, 'quantity lots is not a whole number'), (6, 'no record_id (a re-delivery could not be recognised)'),
            (7, 'a usage record is a JSON object') $$,
  'each unreadable record is kept with its position and reason');
select is((select count(*) from public.usage_records where source = 'tmobile' and source_record_id in ('cb-1', 'cb-2')), 2::bigint,
  'a date without a time is midnight UTC, a quoted number is a number');
select is((select rows_duplicate from public.ingest_usage_records('10000000-0000-4000-8000-00000000000a', 'tmobile',
    '[{"mdn": "+13125550101", "recorded_at": "2026-03-05T10:00:00Z", "kind": "data", "quantity": 2048, "record_id": "cb-1"}]')), 1,
  'a record delivered again counts once');

-- Records first, rollups after (what `wingtel usage ingest` does for a file): the batch is
-- pending until roll_up_usage adds it, once. A partly re-delivered file rolls up only its new
-- records. A batch left pending by a loader that stopped is read back from usage_records.
select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-03-10T15:00:00Z", "kind": "data", "quantity": 100, "record_id": "p-1"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-03-10T16:00:00Z", "kind": "voice", "quantity": 30, "record_id": "p-2"}
]');
create temp table pending_batch on commit drop as
  select * from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'att', 'p.csv', null, roll_up => false);
select results_eq($$ select rows_inserted, rolled_up_at is null, first_recorded_at, last_recorded_at from pending_batch $$,
  $$ values (2, true, '2026-03-10T15:00:00Z'::timestamptz, '2026-03-10T16:00:00Z'::timestamptz) $$,
  'with roll_up => false the records are in and the batch is pending, with its time bounds');
select is((select count(*) from public.usage_daily where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-03-10'),
  0::bigint, 'nothing in the rollups yet');
select is(public.roll_up_usage('10000000-0000-4000-8000-00000000000a'), 1, 'roll_up_usage adds the pending batch');
select is(public.roll_up_usage('10000000-0000-4000-8000-00000000000a'), 0, 'and only once');
-- The same file again plus one new record, left pending, then rolled up by "another session"
-- (the temporary tables that would give the fast path are emptied first).
select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-03-10T15:00:00Z", "kind": "data", "quantity": 100, "record_id": "p-1"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-03-10T16:00:00Z", "kind": "voice", "quantity": 30, "record_id": "p-2"},
  {"line_number": 4, "mdn": "+13125550101", "recorded_at": "2026-03-10T17:00:00Z", "kind": "data", "quantity": 7, "record_id": "p-3"}
]');
select results_eq($$ select rows_inserted, rows_duplicate from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'att', 'p2.csv', null, roll_up => false) $$,
  $$ values (1, 2) $$, 'a partly re-delivered file takes only its new record');
truncate pg_temp.usage_taken, pg_temp.usage_taken_batch;
select is(public.roll_up_usage('10000000-0000-4000-8000-00000000000a'), 1, 'a batch whose loader stopped is rolled up from usage_records');
select results_eq($$ select data_bytes, voice_seconds from public.usage_daily
                     where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-03-10' $$,
  $$ values (107::bigint, 30::bigint) $$, 'each record is in the rollup once: 100 + 7 bytes, 30 seconds');

select * from finish();
rollback;
