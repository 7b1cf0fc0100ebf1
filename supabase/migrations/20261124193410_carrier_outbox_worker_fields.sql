-- What the outbox worker needs on carrier commands: who holds a command and until when (a
-- lease, so a command whose worker died is taken again), and how many attempts are allowed
-- before it is given up (dead-letter). Functions: sql/20_domain/55_outbox.sql.
alter table public.carrier_commands
  add column claimed_by text,
  add column lease_until timestamptz,
  add column max_attempts integer not null default 8 check (max_attempts > 0);
comment on column public.carrier_commands.claimed_by is 'The worker that holds the command (while in_flight without a carrier request id).';
comment on column public.carrier_commands.lease_until is 'A claimed command not reported by then is claimed again by another worker.';
comment on column public.carrier_commands.max_attempts is 'Attempts before the command is given up (dead) and the line rolled back.';
create index carrier_commands_lease_idx on public.carrier_commands (lease_until) where status = 'in_flight' and carrier_request_id is null;
