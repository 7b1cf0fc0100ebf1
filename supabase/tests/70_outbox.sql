-- The carrier outbox as the worker uses it: claim under a lease, retry with backoff, give up
-- (dead-letter) after the limit with the line rolled back, and reclaim a dead worker's command.
begin;
select plan(13);

create function pg_temp.as_service() returns void language sql as $$
  select set_config('request.jwt.claims', '{"role":"service_role"}', true);
  set local role service_role;
$$;

-- Only this test's command is due: commands other data left in the outbox (the demo's dunning
-- suspensions in a quick-start database, say) wait until after the test (rolled back anyway).
update public.carrier_commands set next_attempt_at = now() + interval '1 day' where status in ('pending', 'in_flight');
update public.carrier_commands set lease_until = now() + interval '1 day' where status = 'in_flight';

-- A suspension waiting in the outbox.
select public.suspend_subscriber('10000000-0000-4000-8000-00000000000a', '5b100000-0000-4000-8000-00000000000a', 'non_payment');
update public.carrier_commands set max_attempts = 3 where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and status = 'pending';

select pg_temp.as_service();
create temp table claimed on commit drop as select * from public.claim_carrier_commands('worker-1', 10);
select is((select count(*) from claimed), 1::bigint, 'a worker claims the due command');
select results_eq($$ select status::text, claimed_by, attempts, lease_until > now() from claimed $$,
  $$ values ('in_flight', 'worker-1', 1, true) $$, 'it is in flight under the worker''s lease');
select is((select count(*) from public.claim_carrier_commands('worker-2', 10)), 0::bigint, 'another worker does not get it while the lease runs');

-- A transient failure: back to pending after a backoff; the carrier's Retry-After wins when given.
select is((public.retry_carrier_command('10000000-0000-4000-8000-00000000000a', (select id from claimed), 'HTTP 503')).status,
  'pending'::public.command_status, 'a transient failure puts it back in the queue');
select ok((select next_attempt_at between now() + interval '1 second' and now() + interval '3 seconds'
           from public.carrier_commands where id = (select id from claimed)), 'after 2 s ± 50% (first backoff)');
select is((select count(*) from public.claim_carrier_commands('worker-2', 10)), 0::bigint, 'not due before its backoff');
update public.carrier_commands set next_attempt_at = now() - interval '1 second' where id = (select id from claimed);
select is((select attempts from public.claim_carrier_commands('worker-2', 10)), 2, 'due again: claimed, second attempt');
select ok((select next_attempt_at between now() + interval '29 seconds' and now() + interval '31 seconds'
           from public.retry_carrier_command('10000000-0000-4000-8000-00000000000a', (select id from claimed), 'HTTP 429', interval '30 seconds')),
  'Retry-After is honoured');

-- A worker dies mid-call: once its lease runs out, another worker takes the command.
update public.carrier_commands set next_attempt_at = now() - interval '1 second' where id = (select id from claimed);
select is((select claimed_by from public.claim_carrier_commands('worker-3', 10, interval '1 second')), 'worker-3', 'claimed (third attempt)');
update public.carrier_commands set lease_until = now() - interval '1 second' where id = (select id from claimed);
select is((select claimed_by from public.claim_carrier_commands('worker-4', 10)), 'worker-4', 'an expired lease is reclaimed by another worker');

-- Attempts exhausted: dead, and the line is rolled back with the last error.
select is((public.retry_carrier_command('10000000-0000-4000-8000-00000000000a', (select id from claimed), 'HTTP 500')).status,
  'dead'::public.command_status, 'after max_attempts the command is dead-lettered');
reset role;
select results_eq($$ select status::text, suspend_reason::text from public.subscribers where id = '5b100000-0000-4000-8000-00000000000a' $$,
  $$ values ('active', null::text) $$, 'the line is back to what it was');
select is((select reason from public.subscriber_events where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and kind = 'suspend_refused'),
  'gave up after 4 attempts: HTTP 500', 'the feed says the carrier was never reached, with the last error');

select * from finish();
rollback;
