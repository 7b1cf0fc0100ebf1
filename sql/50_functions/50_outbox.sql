-- The outbox worker of `wingtel serve` (Sources/WingtelFunctions/Outbox). It claims only the
-- commands of carriers it has an adapter for, so a deployment without, say, AT&T credentials
-- leaves AT&T commands pending (visible in public.outbox_status) instead of burning their
-- attempts. The claim itself is claim_carrier_commands' rule: due pending commands and
-- commands whose lease ran out (their worker died), FOR UPDATE SKIP LOCKED.

create or replace function public.claim_outbox_commands(
  worker text, adapters public.carrier_adapter[], max_count integer default 10, lease interval default '60 seconds')
returns table (
  organization_id uuid, id uuid, kind public.carrier_command_kind, adapter public.carrier_adapter, payload jsonb,
  idempotency_key text, attempts integer, max_attempts integer)
language sql
security definer
set search_path = ''
as $$
  with ready as (
    select c.organization_id, c.id, k.adapter
    from public.carrier_commands c
    join public.carriers k on k.organization_id = c.organization_id and k.id = c.carrier_id
    where ((c.status = 'pending' and c.next_attempt_at <= now())
           or (c.status = 'in_flight' and c.carrier_request_id is null and c.lease_until < now()))
      and k.adapter = any (claim_outbox_commands.adapters)
    order by c.next_attempt_at, c.created_at
    limit greatest(claim_outbox_commands.max_count, 0)
    for update of c skip locked
  ), claimed as (
    update public.carrier_commands c
       set status = 'in_flight', claimed_by = claim_outbox_commands.worker,
           lease_until = now() + claim_outbox_commands.lease, attempts = c.attempts + 1
      from ready r
     where c.organization_id = r.organization_id and c.id = r.id
    returning c.organization_id, c.id, c.kind, r.adapter, c.payload, c.idempotency_key, c.attempts, c.max_attempts
  )
  select * from claimed
$$;
comment on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) is 'Takes up to max_count due commands (or commands whose lease ran out) of carriers served by the given adapters, for one worker under a lease; concurrent workers get disjoint sets. Returns what the adapter needs.';

-- What operations watch: commands by carrier and state, the oldest waiting, and the dead
-- letters with their last error.
create or replace view public.outbox_status with (security_invoker = true) as
select c.organization_id, k.code as carrier, k.adapter, c.status, count(*) as commands,
       min(c.created_at) as oldest_created_at, max(c.attempts) as max_attempts_used,
       (array_agg(c.error order by c.created_at desc) filter (where c.error is not null))[1] as latest_error
from public.carrier_commands c
join public.carriers k on k.organization_id = c.organization_id and k.id = c.carrier_id
group by c.organization_id, k.code, k.adapter, c.status;
comment on view public.outbox_status is 'Carrier commands per organization, carrier and state: how many, the oldest, the most attempts used and the latest error. Dead letters are status = dead (see carrier_commands.error for each).';

revoke all on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) from public, anon, authenticated;
grant execute on function public.claim_outbox_commands(text, public.carrier_adapter[], integer, interval) to service_role;
revoke all on public.outbox_status from public, anon;
grant select on public.outbox_status to authenticated, service_role;
