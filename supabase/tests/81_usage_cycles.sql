-- Usage per billing cycle: usage_cycles always equals usage_daily summed by each line's cycle,
-- whatever writes the rollups (ingestion, a re-delivered day, a correction, a delete), and
-- follows a change of billing day or of a line's account. Rating reads it.
begin;
select plan(23);

-- The drift: cycle rows that differ from usage_daily summed by the line's current cycle
-- (rows whose sums are all zero count as absent on both sides).
create function pg_temp.cycle_drift() returns bigint language sql as $$
  select count(*) from (
    select d.organization_id, d.subscriber_id, private.cycle_start(d.day, a.billing_day) as cycle_start,
           sum(d.data_bytes) as data_bytes, sum(d.voice_seconds) as voice_seconds, sum(d.sms_count) as sms_count
    from public.usage_daily d
    join public.subscribers l on l.organization_id = d.organization_id and l.id = d.subscriber_id
    join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
    group by 1, 2, 3
    having sum(d.data_bytes) <> 0 or sum(d.voice_seconds) <> 0 or sum(d.sms_count) <> 0) e
  full join (select * from public.usage_cycles where data_bytes <> 0 or voice_seconds <> 0 or sms_count <> 0) c
    on c.organization_id = e.organization_id and c.subscriber_id = e.subscriber_id and c.cycle_start = e.cycle_start
  where e.subscriber_id is null or c.subscriber_id is null
     or (e.data_bytes, e.voice_seconds, e.sms_count) is distinct from (c.data_bytes, c.voice_seconds, c.sms_count)
$$;
create function pg_temp.cycle(line uuid, starts date) returns text language sql as $$
  select concat_ws('/', data_bytes, voice_seconds, sms_count) from public.usage_cycles
  where organization_id = '10000000-0000-4000-8000-00000000000a' and subscriber_id = line and cycle_start = starts
$$;

-- Cycle starts, computed by hand: billing day 15, a day before and on the 15th; day 5 across a
-- year end; day 28 around a leap day.
select results_eq($$ values (private.cycle_start('2026-03-14', 15)), (private.cycle_start('2026-03-15', 15)),
                            (private.cycle_start('2026-01-03', 5)), (private.cycle_start('2028-02-29', 28)),
                            (private.cycle_start('2028-03-01', 28)), (private.cycle_start('2026-12-31', 1)) $$,
  $$ values (date '2026-02-15'), (date '2026-03-15'), (date '2025-12-05'), (date '2028-02-28'), (date '2028-02-28'), (date '2026-12-01') $$,
  'a day belongs to the cycle that starts on the billing day on or before it');

select is(pg_temp.cycle_drift(), 0::bigint, 'the seed''s rollups are in their cycles');
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-01-05'), '734003200/420/0',
  'the seed''s 6 January usage is in the cycle starting 5 January (billing day 5)');

-- Ingestion: a file of records across a cycle boundary (4 and 5 February, New York time).
create function pg_temp.stage(rows_json jsonb) returns void language plpgsql as $$
begin
  drop table if exists pg_temp.usage_staging;
  create temp table usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text, quantity bigint, record_id text, problem text);
  execute 'insert into pg_temp.usage_staging select * from jsonb_populate_recordset(null::pg_temp.usage_staging, $1)' using rows_json;
end;
$$;
select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-02-05T04:59:00Z", "kind": "data", "quantity": 1000, "record_id": "c-1"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-02-05T05:00:00Z", "kind": "data", "quantity": 2000, "record_id": "c-2"},
  {"line_number": 4, "mdn": "+13125550101", "recorded_at": "2026-02-05T12:00:00Z", "kind": "sms", "quantity": 3, "record_id": "c-3"}
]');
select is((select rows_inserted from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'verizon', 'cycles-1.csv')), 3, 'three records taken');
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-01-05'), '734004200/420/0',
  '23:59 on 4 February (New York) counts in the January cycle');
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-02-05'), '2000/0/3', 'midnight on the 5th starts the February cycle');

-- A later file adds to a day already rolled up (the rollups'' add-to path: an update).
select pg_temp.stage('[
  {"line_number": 2, "mdn": "+13125550101", "recorded_at": "2026-02-05T18:00:00Z", "kind": "voice", "quantity": 90, "record_id": "c-4"},
  {"line_number": 3, "mdn": "+13125550101", "recorded_at": "2026-02-05T12:00:00Z", "kind": "sms", "quantity": 3, "record_id": "c-3"}
]');
select results_eq($$ select rows_inserted, rows_duplicate from public.ingest_usage('10000000-0000-4000-8000-00000000000a', 'verizon', 'cycles-2.csv') $$,
  $$ values (1, 1) $$, 'the new record is taken, the re-delivered one is not');
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-02-05'), '2000/90/3', 'the cycle gains the new record only');
select is(pg_temp.cycle_drift(), 0::bigint, 'cycles equal the daily rollups after ingestion');

-- Any other write to the rollups: a correction, a delete, a multi-row insert.
update public.usage_daily set data_bytes = data_bytes - 500
 where organization_id = '10000000-0000-4000-8000-00000000000a' and subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-02-05';
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-02-05'), '1500/90/3', 'a correction of a day moves its cycle by the difference');
delete from public.usage_daily
 where organization_id = '10000000-0000-4000-8000-00000000000a' and subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-02-04';
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-01-05'), '734003200/420/0', 'a deleted day leaves its cycle');
insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
select '10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', date '2026-04-01' + g, 10, 1, 1
from generate_series(0, 9) g;
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-03-05'), '40/4/4', '1-4 April fall in the March cycle');
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-04-05'), '60/6/6', '5-10 April in the April cycle');
select is(pg_temp.cycle_drift(), 0::bigint, 'cycles equal the daily rollups after direct writes');

-- A rollup naming no line (usage_daily has no foreign key): written, and in no cycle.
select lives_ok($$insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
                  values ('10000000-0000-4000-8000-00000000000a', '5b900000-0000-4000-8000-00000000000a', '2026-04-02', 5, 5, 5)$$,
  'a rollup of no known line does not stop the write');
select is((select count(*) from public.usage_cycles where subscriber_id = '5b900000-0000-4000-8000-00000000000a'), 0::bigint,
  'and it is in no cycle');

-- A new billing day moves the cycles of the account's lines.
update public.accounts set billing_day = 3
 where organization_id = '10000000-0000-4000-8000-00000000000a' and id = 'ac000000-0000-4000-8000-00000000000a';
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-04-03'), '80/8/8', 'billing day 3: 3-10 April are one cycle');
select is(pg_temp.cycle_drift(), 0::bigint, 'cycles equal the daily rollups after a change of billing day');

-- A line moved to an account billing on the 15th.
update public.subscribers set account_id = 'ac100000-0000-4000-8000-00000000000a'
 where organization_id = '10000000-0000-4000-8000-00000000000a' and id = '5b100000-0000-4000-8000-00000000000a';
select is(pg_temp.cycle('5b100000-0000-4000-8000-00000000000a', '2026-03-15'), '100/10/10', 'on the new account all of 1-10 April is in the March 15 cycle');
select is(pg_temp.cycle_drift(), 0::bigint, 'cycles equal the daily rollups after a line changes account');

-- A loader that writes with triggers off rebuilds the organization's cycles.
set local session_replication_role = replica;
insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
values ('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', '2026-05-20', 7, 7, 7);
set local session_replication_role = origin;
select isnt(pg_temp.cycle_drift(), 0::bigint, 'a write with triggers off is not in the cycles');
select cmp_ok(private.rebuild_usage_cycles('10000000-0000-4000-8000-00000000000a'), '>', 0::bigint, 'rebuild_usage_cycles writes the organization''s cycles');
select is(pg_temp.cycle_drift(), 0::bigint, 'rebuild_usage_cycles sums them again');

select * from finish();
rollback;
