-- The carrier outbox, seen from the worker (the Swift worker calls these as service_role):
--   claim_carrier_commands → call the carrier with the idempotency key →
--     mark_carrier_command_sent (accepted; the answer comes later by callback), or
--     complete_carrier_command (a synchronous answer), or
--     retry_carrier_command (a transient failure: backoff with jitter, or the carrier's Retry-After;
--                            after max_attempts the command is dead and the line rolled back).
-- Workers never block each other (FOR UPDATE SKIP LOCKED); a claim is a lease, so a command
-- whose worker died is claimed again once the lease runs out.

create or replace function public.claim_carrier_commands(worker text, max_count integer default 10, lease interval default '60 seconds')
returns setof public.carrier_commands
language sql
security definer
set search_path = ''
as $$
  with ready as (
    select c.organization_id, c.id
    from public.carrier_commands c
    where (c.status = 'pending' and c.next_attempt_at <= now())
       or (c.status = 'in_flight' and c.carrier_request_id is null and c.lease_until < now())
    order by c.next_attempt_at, c.created_at
    limit greatest(claim_carrier_commands.max_count, 0)
    for update skip locked
  )
  update public.carrier_commands c
     set status = 'in_flight', claimed_by = claim_carrier_commands.worker,
         lease_until = now() + claim_carrier_commands.lease, attempts = c.attempts + 1
    from ready r
   where c.organization_id = r.organization_id and c.id = r.id
  returning c.*
$$;
comment on function public.claim_carrier_commands(text, integer, interval) is 'Takes up to max_count commands that are due (or whose lease ran out) for one worker, under a lease; concurrent workers get disjoint sets.';

create or replace function public.mark_carrier_command_sent(organization_id uuid, command_id uuid, carrier_request_id text)
returns public.carrier_commands
language plpgsql
security definer
set search_path = ''
as $$
declare
  command public.carrier_commands;
begin
  update public.carrier_commands c
     set carrier_request_id = mark_carrier_command_sent.carrier_request_id, lease_until = null
   where c.organization_id = mark_carrier_command_sent.organization_id and c.id = mark_carrier_command_sent.command_id
     and c.status = 'in_flight'
  returning * into command;
  if command.id is null then
    raise exception 'carrier command % is not in flight', mark_carrier_command_sent.command_id using errcode = 'P0001';
  end if;
  return command;
end;
$$;
comment on function public.mark_carrier_command_sent(uuid, uuid, text) is 'The carrier accepted the request and will answer by callback with this request id; the command is no longer leased.';

create or replace function public.retry_carrier_command(
  organization_id uuid, command_id uuid, error text, retry_after interval default null)
returns public.carrier_commands
language plpgsql
security definer
set search_path = ''
as $$
declare
  command public.carrier_commands;
  backoff interval;
begin
  select c.* into command from public.carrier_commands c
   where c.organization_id = retry_carrier_command.organization_id and c.id = retry_carrier_command.command_id
   for update;
  if command.id is null then
    raise exception 'there is no carrier command % in this organization', retry_carrier_command.command_id using errcode = 'P0002';
  end if;
  if command.status <> 'in_flight' then
    raise exception 'carrier command % is %, not in flight', command.id, command.status using errcode = 'P0001';
  end if;
  if command.attempts >= command.max_attempts then
    -- Give up: roll the line back as a refusal would, then mark the command dead.
    perform public.complete_carrier_command(command.organization_id, command.id, false, '{}',
      format('gave up after %s attempts: %s', command.attempts, retry_carrier_command.error));
    update public.carrier_commands c set status = 'dead', claimed_by = null, lease_until = null
     where c.organization_id = command.organization_id and c.id = command.id
    returning * into command;
    return command;
  end if;
  -- Exponential backoff (2, 4, 8 … seconds, at most an hour) with ±50% jitter, unless the
  -- carrier said when to come back.
  backoff := coalesce(retry_carrier_command.retry_after,
                      least(power(2, command.attempts), 3600) * interval '1 second' * (0.5 + random()));
  update public.carrier_commands c
     set status = 'pending', error = retry_carrier_command.error, next_attempt_at = now() + backoff,
         claimed_by = null, lease_until = null
   where c.organization_id = command.organization_id and c.id = command.id
  returning * into command;
  return command;
end;
$$;
comment on function public.retry_carrier_command(uuid, uuid, text, interval) is 'A transient failure: try again after a backoff with jitter (or retry_after); after max_attempts the command is dead and the line rolled back with the last error.';

revoke all on function public.claim_carrier_commands(text, integer, interval), public.mark_carrier_command_sent(uuid, uuid, text),
  public.retry_carrier_command(uuid, uuid, text, interval) from public, anon, authenticated;
grant execute on function public.claim_carrier_commands(text, integer, interval), public.mark_carrier_command_sent(uuid, uuid, text),
  public.retry_carrier_command(uuid, uuid, text, interval) to service_role;
