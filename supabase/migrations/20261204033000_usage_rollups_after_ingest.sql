-- Usage ingestion at file scale (B1). Measured on a million records over 100k lines:
--  * the rollups' per-row foreign key to subscribers was 10 of the 17 s of rolling up a file; it
--    goes, like usage_records' before it (ingestion writes only lines it has just resolved, and
--    loaders that write rollups themselves, the demo, check the rule set-based);
--  * the records' per-line B-tree (organization, subscriber, start) cost 3.5-4.5 s of every
--    million inserted and nothing reads by it: rating and the self-service views read the daily
--    rollups. A BRIN index on the start time (a few pages per partition, summarised in the
--    background) keeps time-bounded reads, such as one line's records of a day, off a full scan;
--  * a batch can commit its records before its rollups (ingest_usage(…, roll_up => false), then
--    roll_up_usage): rolled_up_at says whether it is in usage_daily yet, and the batch's time
--    bounds let a later roll-up find its records.
alter table public.usage_daily drop constraint usage_daily_organization_id_subscriber_id_fkey;
comment on table public.usage_daily is 'Usage per line per day (in the organization''s time zone), the table rating, analysts and forecasting read; ingestion adds each batch to it (see usage_batches.rolled_up_at). No foreign key to subscribers: ingestion writes only lines it resolved, and a per-row check would dominate the rollup.';

drop index public.usage_records_subscriber_idx;
create index usage_records_recorded_brin on public.usage_records using brin (recorded_at) with (autosummarize = on);
comment on index public.usage_records_recorded_brin is 'Block ranges by start time: time-bounded reads (a line''s records of a day: filter by organization_id, subscriber_id and recorded_at) skip what they cannot match.';

alter table public.usage_batches
  add column rolled_up_at timestamptz,
  add column first_recorded_at timestamptz,
  add column last_recorded_at timestamptz;
update public.usage_batches set rolled_up_at = received_at;
create index usage_batches_pending_idx on public.usage_batches (organization_id, received_at) where rolled_up_at is null;
comment on column public.usage_batches.rolled_up_at is 'When the batch''s records were added to usage_daily; null while a roll-up is pending (roll_up_usage adds it; the bill run does so before rating).';
comment on column public.usage_batches.first_recorded_at is 'Earliest start time among the records the batch took (null when it took none).';
comment on column public.usage_batches.last_recorded_at is 'Latest start time among the records the batch took.';
