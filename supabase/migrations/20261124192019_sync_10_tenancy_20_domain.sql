-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/10_tenancy/10_helpers.sql (sha256 48fc4f6d4ddc63ddc85ba4718648acf6de02a154195085b16df46ac39bcfcb8c)
-- Security-definer helpers that row-level security policies call. They live in `private`
-- (not exposed through the API), fix search_path to '' and qualify every name. Policies
-- call them wrapped in a sub-select, `(select private.user_org_ids())`, so each runs once
-- per statement (an InitPlan) instead of once per row, and they return arrays so that
-- `organization_id = any (…)` can use an index. They are parallel safe (they only read
-- tables and settings, which parallel workers receive), so a policy does not stop
-- PostgreSQL from using parallel workers for large scans.

grant usage on schema private to authenticated, service_role;

create or replace function private.user_org_ids(minimum public.member_role default 'viewer')
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(m.organization_id), '{}')
  from public.organization_members m
  where m.user_id = auth.uid() and m.role >= minimum
$$;
comment on function private.user_org_ids(public.member_role) is 'Organizations in which the caller is a member with at least the given role.';
revoke all on function private.user_org_ids(public.member_role) from public;
grant execute on function private.user_org_ids(public.member_role) to authenticated, service_role;

create or replace function private.user_role(organization_id uuid)
returns public.member_role
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select m.role from public.organization_members m
  where m.organization_id = user_role.organization_id and m.user_id = auth.uid()
$$;
comment on function private.user_role(uuid) is 'The caller''s role in an organization, or null when the caller is not a member.';
revoke all on function private.user_role(uuid) from public;
grant execute on function private.user_role(uuid) to authenticated, service_role;

create or replace function private.customer_account_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.account_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_account_ids() is 'Customer accounts the caller may see as a self-service customer.';
revoke all on function private.customer_account_ids() from public;
grant execute on function private.customer_account_ids() to authenticated, service_role;

create or replace function private.customer_org_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.organization_id), '{}') from public.customer_identities c where c.user_id = auth.uid()
$$;
comment on function private.customer_org_ids() is 'Organizations in which the caller is a self-service customer.';
revoke all on function private.customer_org_ids() from public;
grant execute on function private.customer_org_ids() to authenticated, service_role;

-- Raises 42501 unless the caller holds at least `minimum` in the organization; returns the role.
create or replace function private.require_role(organization_id uuid, minimum public.member_role)
returns public.member_role
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  caller_role public.member_role := private.user_role(require_role.organization_id);
  acting_role text := coalesce(nullif(current_setting('role', true), ''), 'none');
begin
  -- Wingtel's own services act as service_role (PostgREST's service key, or
  -- DatabaseIdentity.service); a superuser session without SET ROLE is the operator's CLI.
  if acting_role = 'service_role'
     or (acting_role = 'none' and exists (select 1 from pg_catalog.pg_roles r where r.rolname = session_user and r.rolsuper)) then
    return 'owner';
  end if;
  if auth.uid() is null then
    raise exception 'not signed in' using errcode = '42501', hint = 'Call this as an authenticated user.';
  end if;
  if caller_role is null then
    raise exception 'you are not a member of organization %', require_role.organization_id using errcode = '42501';
  end if;
  if caller_role < minimum then
    raise exception 'this needs the % role or higher in the organization; you are %', minimum, caller_role
      using errcode = '42501';
  end if;
  return caller_role;
end;
$$;
comment on function private.require_role(uuid, public.member_role) is 'Guard for security-definer functions: the caller must hold at least the given role; service_role and superuser sessions pass.';
revoke all on function private.require_role(uuid, public.member_role) from public;
grant execute on function private.require_role(uuid, public.member_role) to authenticated, service_role;

create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke all on function private.touch_updated_at() from public;

create or replace function private.check_organization()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    raise exception 'unknown time zone "%"', new.time_zone
      using errcode = '22023', hint = 'Use an IANA name such as America/New_York or America/Chicago.';
  end if;
  return new;
end;
$$;
revoke all on function private.check_organization() from public;

create or replace trigger organizations_check before insert or update of time_zone on public.organizations
  for each row execute function private.check_organization();
create or replace trigger organization_members_touch before update on public.organization_members
  for each row execute function private.touch_updated_at();

-- >>> sql/20_domain/10_identifiers.sql (sha256 a78807a8759043b4b8ef256e4d0a3e6f9b38fd63d45f14846dbeb401ba437adf)
-- Identifier checks, used by the validation triggers, the BeQuick import and analysts.

create or replace function public.luhn_valid(digits text)
returns boolean
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select digits ~ '^[0-9]+$' and (
    select sum(case when (length(digits) - i) % 2 = 1
                    then (case when d * 2 > 9 then d * 2 - 9 else d * 2 end)
                    else d end) % 10 = 0
    from (select i, substr(digits, i, 1)::int as d from generate_series(1, length(digits)) as i) as x)
$$;
comment on function public.luhn_valid(text) is 'True when a digit string passes the Luhn (mod 10) check.';

create or replace function public.is_valid_iccid(iccid text)
returns boolean
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select iccid ~ '^89[0-9]{17,18}$' and public.luhn_valid(iccid)
$$;
comment on function public.is_valid_iccid(text) is 'ICCID: 19 or 20 digits starting 89 (telecom), Luhn check digit over the whole string.';

create or replace function public.is_valid_imei(imei text)
returns boolean
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select imei ~ '^[0-9]{15}$' and public.luhn_valid(imei)
$$;
comment on function public.is_valid_imei(text) is 'IMEI: 15 digits with a Luhn check digit.';

create or replace function public.is_valid_mdn(mdn text)
returns boolean
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select case
    when mdn ~ '^\+1' then
      -- NANP: +1 NPA NXX XXXX; N = 2-9; no N11 area codes or exchanges; N9X area codes are unassigned.
      mdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'
      and substr(mdn, 4, 2) <> '11'   -- N11 area code
      and substr(mdn, 4, 1) <> '9'    -- N9X area code
      and substr(mdn, 7, 2) <> '11'   -- N11 exchange
    else mdn ~ '^\+[2-9][0-9]{7,14}$'
  end
$$;
comment on function public.is_valid_mdn(text) is 'A line number in E.164; +1 numbers must also be valid NANP numbers (NPA and NXX start 2–9, no N11, no N9X area code).';

create or replace function public.normalize_mdn(raw text)
returns text
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select case
    when digits ~ '^[0-9]{10}$' and public.is_valid_mdn('+1' || digits) then '+1' || digits
    when digits ~ '^1[0-9]{10}$' and public.is_valid_mdn('+' || digits) then '+' || digits
    when raw ~ '^\+' and public.is_valid_mdn('+' || digits) then '+' || digits
  end
  from (select regexp_replace(raw, '[^0-9]', '', 'g') as digits) as d
$$;
comment on function public.normalize_mdn(text) is 'E.164 form of a phone number written as 10-digit NANP (BeQuick MDNs), 1+10 digits or +E.164 with punctuation; null when it is not a valid number.';

revoke all on function public.luhn_valid(text), public.is_valid_iccid(text), public.is_valid_imei(text),
  public.is_valid_mdn(text), public.normalize_mdn(text) from public;
grant execute on function public.luhn_valid(text), public.is_valid_iccid(text), public.is_valid_imei(text),
  public.is_valid_mdn(text), public.normalize_mdn(text) to authenticated, service_role;

-- >>> sql/20_domain/20_validation.sql (sha256 f71581a18ec2c4f1b5b30fa841e0bd5ec492dbdc49ccaf43c5eba03b9b78151b)
-- Validation with messages an operator understands. The triggers run before the constraints
-- (unique indexes, the exclusion constraint) that back them up, so a bad row is refused
-- with a SQLSTATE and a plain sentence, never a bare constraint name. The two that look at
-- other rows are security definer, so row-level security cannot hide a conflicting row.

create or replace function private.validate_sim_card()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not public.is_valid_iccid(new.iccid) then
    raise exception 'ICCID % fails its check digit or is not 19–20 digits starting 89', new.iccid
      using errcode = '23514', hint = 'Copy the ICCID again from the SIM card or the carrier''s file.';
  end if;
  if new.kind = 'esim' and (new.eid is null or new.eid !~ '^[0-9]{32}$') then
    raise exception 'an eSIM needs its 32-digit EID (got %)', coalesce(new.eid, 'none') using errcode = '23514';
  end if;
  if new.imsi is not null and new.imsi !~ '^[0-9]{14,15}$' then
    raise exception 'IMSI % is not 14–15 digits', new.imsi using errcode = '23514';
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end;
$$;

create or replace function private.validate_device()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not public.is_valid_imei(new.imei) then
    raise exception 'IMEI % fails its check digit or is not 15 digits', new.imei
      using errcode = '23514', hint = 'Dial *#06# on the device to read its IMEI.';
  end if;
  return new;
end;
$$;

create or replace function private.validate_account()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.email is not null and new.email::text !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
    raise exception '"%" is not an email address', new.email using errcode = '23514';
  end if;
  if new.phone is not null and not public.is_valid_mdn(new.phone) then
    raise exception 'contact phone % is not a valid E.164 number', new.phone
      using errcode = '23514', hint = 'Write it as +1 and ten digits, for example +13125550142.';
  end if;
  if new.country = 'US' and new.state is not null and new.state !~ '^[A-Z]{2}$' then
    raise exception 'state "%" is not a two-letter USPS code', new.state using errcode = '23514';
  end if;
  if new.billing_day not between 1 and 28 then
    raise exception 'billing day % is outside 1–28', new.billing_day using errcode = '23514';
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end;
$$;

create or replace function private.validate_subscriber()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  live boolean := new.status in ('pending', 'active', 'suspended');
begin
  if new.mdn is not null and not public.is_valid_mdn(new.mdn) then
    raise exception 'MDN % is not a valid E.164 number', new.mdn
      using errcode = '23514', hint = 'US numbers are +1 followed by ten digits, area code and exchange starting 2–9.';
  end if;
  if live and new.mdn is not null and exists (
      select 1 from public.subscribers s
      where s.organization_id = new.organization_id and s.mdn = new.mdn and s.id <> new.id
        and s.status in ('pending', 'active', 'suspended')) then
    raise exception 'MDN % is already in use by another line', new.mdn using errcode = '23505';
  end if;
  if live and new.current_sim_id is not null and exists (
      select 1 from public.subscribers s
      where s.organization_id = new.organization_id and s.current_sim_id = new.current_sim_id and s.id <> new.id
        and s.status in ('pending', 'active', 'suspended')) then
    raise exception 'SIM % is already assigned to another line',
      (select c.iccid from public.sim_cards c where c.organization_id = new.organization_id and c.id = new.current_sim_id)
      using errcode = '23505', hint = 'Swap or cancel the other line first, or pick a SIM from inventory.';
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end;
$$;

create or replace function private.validate_subscription()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (
      select 1 from public.subscriptions s
      where s.organization_id = new.organization_id and s.subscriber_id = new.subscriber_id
        and s.id <> new.id and s.effective && new.effective) then
    raise exception 'the line already has a plan for part of %', new.effective
      using errcode = '23P01', hint = 'End the current subscription first (change_plan does this).';
  end if;
  return new;
end;
$$;

create or replace function private.validate_port_request()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not public.is_valid_mdn(new.mdn) then
    raise exception 'MDN % is not a valid E.164 number', new.mdn using errcode = '23514';
  end if;
  return new;
end;
$$;

revoke all on function private.validate_sim_card(), private.validate_device(), private.validate_account(),
  private.validate_subscriber(), private.validate_subscription(), private.validate_port_request() from public;

create or replace trigger sim_cards_validate before insert or update on public.sim_cards
  for each row execute function private.validate_sim_card();
create or replace trigger devices_validate before insert or update of imei on public.devices
  for each row execute function private.validate_device();
create or replace trigger accounts_validate before insert or update on public.accounts
  for each row execute function private.validate_account();
create or replace trigger subscribers_validate before insert or update on public.subscribers
  for each row execute function private.validate_subscriber();
create or replace trigger subscriptions_validate before insert or update on public.subscriptions
  for each row execute function private.validate_subscription();
create or replace trigger port_requests_validate before insert or update of mdn on public.port_requests
  for each row execute function private.validate_port_request();

-- >>> sql/20_domain/30_lifecycle_core.sql (sha256 4b555ecb5d69d4d512996733de07d8f0c45cb7cd2a9aacd5d356c7f43b7627d8)
-- Building blocks of the line lifecycle (private): lock a line, check its state and the
-- carrier's limits, write the event log and the outbox.

create or replace function private.actor_name()
returns text
language sql
stable
set search_path = ''
as $$
  select nullif(current_setting('wingtel.actor', true), '')
$$;

-- Locks the line for the rest of the transaction: concurrent lifecycle calls on one line
-- run one after the other, and each sees what the previous one did.
create or replace function private.lock_line(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers;
begin
  select s.* into line from public.subscribers s
   where s.organization_id = lock_line.organization_id and s.id = lock_line.subscriber_id
   for update;
  if line.id is null then
    raise exception 'there is no line % in this organization', lock_line.subscriber_id using errcode = 'P0002';
  end if;
  return line;
end;
$$;

create or replace function private.require_line_status(line public.subscribers, allowed public.line_status[], action text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if not line.status = any (allowed) then
    raise exception 'cannot % line % while it is %', action, coalesce(line.mdn, line.id::text), line.status
      using errcode = 'P0001', hint = format('Allowed from: %s.', array_to_string(allowed, ', '));
  end if;
  if exists (select 1 from public.carrier_commands c
             where c.organization_id = line.organization_id and c.subscriber_id = line.id
               and c.status in ('pending', 'in_flight')) then
    raise exception 'cannot % line %: a carrier request for it is still open', action, coalesce(line.mdn, line.id::text)
      using errcode = 'P0001', hint = 'Wait for the carrier to answer the open request (see subscriber_activity).';
  end if;
end;
$$;

-- The carrier's limits, kept as data on public.carriers (PROTOCOLS.md: ThingSpace allows
-- about 5 provisioning actions per line per day and 4 plan changes a month, none while suspended).
create or replace function private.check_carrier_limits(line public.subscribers, kind public.carrier_command_kind)
returns void
language plpgsql
set search_path = ''
as $$
declare
  carrier public.carriers;
  zone text;
  day_start timestamptz;
  month_start timestamptz;
  used bigint;
begin
  select c.* into carrier from public.carriers c where c.organization_id = line.organization_id and c.id = line.carrier_id;
  select o.time_zone into zone from public.organizations o where o.id = line.organization_id;
  day_start := date_trunc('day', now() at time zone zone) at time zone zone;
  month_start := date_trunc('month', now() at time zone zone) at time zone zone;
  if carrier.max_actions_per_line_per_day is not null then
    select count(*) into used from public.carrier_commands c
     where c.organization_id = line.organization_id and c.subscriber_id = line.id and c.created_at >= day_start;
    if used >= carrier.max_actions_per_line_per_day then
      raise exception '% allows % provisioning actions per line per day; line % has had % today',
        carrier.name, carrier.max_actions_per_line_per_day, coalesce(line.mdn, line.id::text), used
        using errcode = 'P0001', hint = 'Try again tomorrow (the day follows the organization''s time zone).';
    end if;
  end if;
  if kind = 'change_plan' then
    if line.status = 'suspended' and not carrier.allows_plan_change_while_suspended then
      raise exception '% does not allow plan changes while a line is suspended', carrier.name
        using errcode = 'P0001', hint = 'Restore the line first.';
    end if;
    if carrier.max_plan_changes_per_month is not null then
      select count(*) into used from public.carrier_commands c
       where c.organization_id = line.organization_id and c.subscriber_id = line.id
         and c.kind = 'change_plan' and c.created_at >= month_start;
      if used >= carrier.max_plan_changes_per_month then
        raise exception '% allows % plan changes per line per month; line % has had %',
          carrier.name, carrier.max_plan_changes_per_month, coalesce(line.mdn, line.id::text), used
          using errcode = 'P0001', hint = 'The next plan change is possible next month.';
      end if;
    end if;
  end if;
end;
$$;

create or replace function private.log_event(
  line public.subscribers, kind text, reason text default null, details jsonb default '{}', command_id uuid default null)
returns void
language sql
set search_path = ''
as $$
  insert into public.subscriber_events (organization_id, subscriber_id, kind, reason, actor_user_id, actor_name, command_id, details)
  values (line.organization_id, line.id, kind, reason, auth.uid(), private.actor_name(), command_id, coalesce(details, '{}'));
$$;

-- The state to restore if the carrier refuses: the line's columns and its SIMs' states.
create or replace function private.snapshot(line public.subscribers, extra jsonb default '{}')
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'status', line.status, 'network_status', line.network_status, 'suspend_reason', line.suspend_reason,
    'current_sim_id', line.current_sim_id, 'current_device_id', line.current_device_id,
    'sims', coalesce((select jsonb_agg(jsonb_build_object('id', c.id, 'state', c.state))
                      from public.sim_cards c
                      where c.organization_id = line.organization_id
                        and (c.id = line.current_sim_id or c.id = (extra ->> 'new_sim_id')::uuid)), '[]'::jsonb)
  ) || coalesce(extra, '{}')
$$;

create or replace function private.enqueue_command(
  line public.subscribers, kind public.carrier_command_kind, payload jsonb, rollback_state jsonb)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  command_id uuid := gen_random_uuid();
begin
  perform private.check_carrier_limits(line, kind);
  insert into public.carrier_commands (organization_id, id, subscriber_id, carrier_id, kind, payload, rollback_state, idempotency_key)
  values (line.organization_id, command_id, line.id, line.carrier_id, kind, payload, rollback_state,
          format('%s:%s:%s:%s', line.organization_id, line.id, kind, command_id));
  perform pg_notify('wingtel_carrier_commands', line.organization_id::text);
  return command_id;
end;
$$;

create or replace function private.set_sim_state(organization_id uuid, sim_id uuid, state public.sim_state)
returns void
language sql
set search_path = ''
as $$
  update public.sim_cards c set state = set_sim_state.state
   where c.organization_id = set_sim_state.organization_id and c.id = set_sim_state.sim_id
$$;

-- Ends a line's plans at `at`: the one running then is closed, later ones (and one that
-- would start exactly then, which never took effect) are removed.
create or replace function private.end_subscriptions(organization_id uuid, subscriber_id uuid, at timestamptz)
returns void
language sql
set search_path = ''
as $$
  delete from public.subscriptions s
   where s.organization_id = end_subscriptions.organization_id and s.subscriber_id = end_subscriptions.subscriber_id
     and lower(s.effective) >= end_subscriptions.at;
  update public.subscriptions s set effective = tstzrange(lower(s.effective), end_subscriptions.at, '[)')
   where s.organization_id = end_subscriptions.organization_id and s.subscriber_id = end_subscriptions.subscriber_id
     and s.effective @> end_subscriptions.at;
$$;

-- The payload a carrier adapter needs for a line: identifiers and the wholesale plan code.
create or replace function private.carrier_payload(line public.subscribers, extra jsonb default '{}')
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'mdn', line.mdn,
    'iccid', (select c.iccid from public.sim_cards c where c.organization_id = line.organization_id and c.id = line.current_sim_id),
    'imei', (select d.imei from public.devices d where d.organization_id = line.organization_id and d.id = line.current_device_id),
    'rate_plan', (select r.code from public.subscriptions s
                  join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
                  join public.carrier_rate_plans r on r.organization_id = p.organization_id and r.id = p.carrier_rate_plan_id
                  where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now()
                  limit 1)
  )) || coalesce(extra, '{}')
$$;

revoke all on function private.actor_name(), private.lock_line(uuid, uuid),
  private.require_line_status(public.subscribers, public.line_status[], text),
  private.check_carrier_limits(public.subscribers, public.carrier_command_kind),
  private.log_event(public.subscribers, text, text, jsonb, uuid), private.snapshot(public.subscribers, jsonb),
  private.enqueue_command(public.subscribers, public.carrier_command_kind, jsonb, jsonb),
  private.set_sim_state(uuid, uuid, public.sim_state), private.end_subscriptions(uuid, uuid, timestamptz), private.carrier_payload(public.subscribers, jsonb) from public;

-- >>> sql/20_domain/40_lifecycle.sql (sha256 39838ee610b0f475c1554b733ec75102e8235e75f85f4867fe9c3459556e27e1)
-- The line lifecycle. These functions are the only way to change a line's state. Each
-- checks the caller's role, locks the line, validates the transition, records the event and
-- queues the carrier command; complete_carrier_command finalizes on the carrier's answer or
-- rolls the business state back with the carrier's reason.
--
--   pending --activate ok--> active <--restore-- suspended
--      |                       |  \--suspend-->     |
--      +--carrier refuses--> failed   \--cancel--> cancelled <--+
--                              active/suspended --port_out--> ported_out
--
-- Staff functions check the role (agent: customer care; operator: operations); the
-- private *_line functions do the work and are shared with the self-service functions.

create or replace function private.suspend_line(organization_id uuid, subscriber_id uuid, reason public.suspend_reason)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(suspend_line.organization_id, suspend_line.subscriber_id);
  command_id uuid;
begin
  perform private.require_line_status(line, array['active']::public.line_status[], 'suspend');
  command_id := private.enqueue_command(line, 'suspend', private.carrier_payload(line, jsonb_build_object('reason', reason)),
                                        private.snapshot(line));
  update public.subscribers s set status = 'suspended', suspend_reason = suspend_line.reason
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'suspend_requested', reason::text, '{}', command_id);
  return line;
end;
$$;

create or replace function private.restore_line(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(restore_line.organization_id, restore_line.subscriber_id);
  command_id uuid;
begin
  perform private.require_line_status(line, array['suspended']::public.line_status[], 'restore');
  command_id := private.enqueue_command(line, 'restore', private.carrier_payload(line), private.snapshot(line));
  update public.subscribers s set status = 'active', suspend_reason = null
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'restore_requested', null, '{}', command_id);
  return line;
end;
$$;

create or replace function private.change_plan_line(organization_id uuid, subscriber_id uuid, plan_id uuid)
returns text
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(change_plan_line.organization_id, change_plan_line.subscriber_id);
  current_sub public.subscriptions;
  current_plan public.plans;
  new_plan public.plans;
  billing_day smallint;
  zone text;
  local_now timestamp;
  period_end timestamptz;
  command_id uuid;
  new_subscription uuid := gen_random_uuid();
begin
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'change the plan of');
  select p.* into new_plan from public.plans p where p.organization_id = line.organization_id and p.id = change_plan_line.plan_id;
  if new_plan.id is null then
    raise exception 'there is no plan % in this organization', change_plan_line.plan_id using errcode = 'P0002';
  end if;
  if new_plan.status <> 'active' then
    raise exception 'plan % (%) is retired and cannot be chosen', new_plan.name, new_plan.code using errcode = 'P0001';
  end if;
  select s.* into current_sub from public.subscriptions s
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and s.effective @> now()
   for update;
  select p.* into current_plan from public.plans p where p.organization_id = line.organization_id and p.id = current_sub.plan_id;
  if current_plan.id = new_plan.id then
    raise exception 'line % is already on %', coalesce(line.mdn, line.id::text), new_plan.name using errcode = 'P0001';
  end if;
  -- A change scheduled earlier is replaced by this one.
  delete from public.subscriptions s
   where s.organization_id = line.organization_id and s.subscriber_id = line.id and lower(s.effective) > now();

  if current_plan.id is null or new_plan.price_cents >= current_plan.price_cents then
    -- Upgrade (or a line without a current plan): now; the unused part is credited by the bill run.
    command_id := private.enqueue_command(
      line, 'change_plan', private.carrier_payload(line) || jsonb_build_object('rate_plan',
        (select r.code from public.carrier_rate_plans r where r.organization_id = line.organization_id and r.id = new_plan.carrier_rate_plan_id)),
      private.snapshot(line, jsonb_build_object('subscription_id', current_sub.id, 'subscription_upper', upper(current_sub.effective),
                                                'new_subscription_id', new_subscription)));
    if current_sub.id is not null then
      update public.subscriptions s set effective = tstzrange(lower(s.effective), now(), '[)')
       where s.organization_id = line.organization_id and s.id = current_sub.id;
    end if;
    insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason)
    values (line.organization_id, new_subscription, line.id, new_plan.id, tstzrange(now(), null, '[)'), 'upgrade');
    perform private.log_event(line, 'plan_change_requested', null,
      jsonb_build_object('from', current_plan.code, 'to', new_plan.code, 'when', 'now'), command_id);
    return 'now';
  end if;

  -- Downgrade: at the end of the current billing period (the account's billing day, in the
  -- organization's time zone); the carrier is asked when that day comes.
  select a.billing_day into billing_day from public.accounts a where a.organization_id = line.organization_id and a.id = line.account_id;
  select o.time_zone into zone from public.organizations o where o.id = line.organization_id;
  local_now := now() at time zone zone;
  period_end := (date_trunc('month', local_now) + (billing_day - 1) * interval '1 day') at time zone zone;
  if period_end <= now() then
    period_end := (date_trunc('month', local_now) + interval '1 month' + (billing_day - 1) * interval '1 day') at time zone zone;
  end if;
  update public.subscriptions s set effective = tstzrange(lower(s.effective), period_end, '[)')
   where s.organization_id = line.organization_id and s.id = current_sub.id;
  insert into public.subscriptions (organization_id, id, subscriber_id, plan_id, effective, reason)
  values (line.organization_id, new_subscription, line.id, new_plan.id, tstzrange(period_end, null, '[)'), 'downgrade');
  perform private.log_event(line, 'plan_change_scheduled', null,
    jsonb_build_object('from', current_plan.code, 'to', new_plan.code, 'when', period_end));
  return 'at ' || to_char(period_end at time zone zone, 'YYYY-MM-DD');
end;
$$;

create or replace function private.add_add_on_line(organization_id uuid, subscriber_id uuid, add_on_id uuid)
returns public.subscriber_add_ons
language plpgsql
set search_path = ''
as $$
declare
  line public.subscribers := private.lock_line(add_add_on_line.organization_id, add_add_on_line.subscriber_id);
  extra public.add_ons;
  added public.subscriber_add_ons;
begin
  if line.status not in ('active', 'suspended') then
    raise exception 'cannot add an add-on to line % while it is %', coalesce(line.mdn, line.id::text), line.status
      using errcode = 'P0001';
  end if;
  select a.* into extra from public.add_ons a where a.organization_id = line.organization_id and a.id = add_add_on_line.add_on_id;
  if extra.id is null or not extra.active then
    raise exception 'there is no active add-on % in this organization', add_add_on_line.add_on_id using errcode = 'P0002';
  end if;
  insert into public.subscriber_add_ons (organization_id, subscriber_id, add_on_id, effective)
  values (line.organization_id, line.id, extra.id,
          case extra.recurrence when 'one_off' then tstzrange(now(), now() + interval '30 days', '[)') else tstzrange(now(), null, '[)') end)
  returning * into added;
  perform private.log_event(line, 'add_on_added', null, jsonb_build_object('add_on', extra.code, 'price_cents', extra.price_cents));
  return added;
end;
$$;

revoke all on function private.suspend_line(uuid, uuid, public.suspend_reason), private.restore_line(uuid, uuid),
  private.change_plan_line(uuid, uuid, uuid), private.add_add_on_line(uuid, uuid, uuid) from public;

-- Staff entry points --------------------------------------------------------------------

create or replace function public.activate_subscriber(
  organization_id uuid, account_id uuid, sim_id uuid, plan_id uuid, device_id uuid default null, external_id text default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  account public.accounts;
  sim public.sim_cards;
  chosen_plan public.plans;
  device public.devices;
  line public.subscribers;
  command_id uuid;
begin
  perform private.require_role(activate_subscriber.organization_id, 'operator');
  select a.* into account from public.accounts a
   where a.organization_id = activate_subscriber.organization_id and a.id = activate_subscriber.account_id;
  if account.id is null then
    raise exception 'there is no account % in this organization', activate_subscriber.account_id using errcode = 'P0002';
  end if;
  if account.status <> 'active' then
    raise exception 'account % is %; only active accounts get new lines', account.name, account.status using errcode = 'P0001';
  end if;
  select c.* into sim from public.sim_cards c
   where c.organization_id = activate_subscriber.organization_id and c.id = activate_subscriber.sim_id for update;
  if sim.id is null then
    raise exception 'there is no SIM % in this organization', activate_subscriber.sim_id using errcode = 'P0002';
  end if;
  if sim.state <> 'inventory' then
    raise exception 'SIM % is % (only SIMs in inventory can be activated)', sim.iccid, sim.state using errcode = 'P0001';
  end if;
  select p.* into chosen_plan from public.plans p
   where p.organization_id = activate_subscriber.organization_id and p.id = activate_subscriber.plan_id;
  if chosen_plan.id is null or chosen_plan.status <> 'active' then
    raise exception 'there is no active plan % in this organization', activate_subscriber.plan_id using errcode = 'P0002';
  end if;
  if not exists (select 1 from public.carrier_rate_plans r where r.organization_id = chosen_plan.organization_id
                 and r.id = chosen_plan.carrier_rate_plan_id and r.carrier_id = sim.carrier_id) then
    raise exception 'plan % is not sold on the carrier of SIM %', chosen_plan.name, sim.iccid using errcode = 'P0001';
  end if;
  if activate_subscriber.device_id is not null then
    select d.* into device from public.devices d
     where d.organization_id = activate_subscriber.organization_id and d.id = activate_subscriber.device_id;
    if device.id is null then
      raise exception 'there is no device % in this organization', activate_subscriber.device_id using errcode = 'P0002';
    end if;
    if device.compatibility = 'incompatible' then
      raise exception 'device % (%) is not compatible with the network', device.imei, coalesce(device.model, 'unknown model')
        using errcode = 'P0001';
    end if;
  end if;

  insert into public.subscribers (organization_id, account_id, carrier_id, status, current_sim_id, current_device_id, external_id)
  values (activate_subscriber.organization_id, account.id, sim.carrier_id, 'pending', sim.id, device.id, activate_subscriber.external_id)
  returning * into line;
  perform private.set_sim_state(line.organization_id, sim.id, 'assigned');
  insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective, reason)
  values (line.organization_id, line.id, chosen_plan.id, tstzrange(now(), null, '[)'), 'activation');
  command_id := private.enqueue_command(line, 'activate', private.carrier_payload(line),
                                        private.snapshot(line) || jsonb_build_object('sims', jsonb_build_array(jsonb_build_object('id', sim.id, 'state', 'inventory'))));
  perform private.log_event(line, 'activation_requested', null, jsonb_build_object('plan', chosen_plan.code, 'iccid', sim.iccid), command_id);
  return line;
end;
$$;
comment on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text) is 'Orders a new line on a SIM from inventory (operators). The line is pending until the carrier confirms; the carrier assigns the number.';

create or replace function public.suspend_subscriber(organization_id uuid, subscriber_id uuid, reason public.suspend_reason)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(suspend_subscriber.organization_id, 'agent');
  return private.suspend_line(suspend_subscriber.organization_id, suspend_subscriber.subscriber_id, suspend_subscriber.reason);
end;
$$;
comment on function public.suspend_subscriber(uuid, uuid, public.suspend_reason) is 'Suspends an active line with a reason (agents and above).';

create or replace function public.restore_subscriber(organization_id uuid, subscriber_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(restore_subscriber.organization_id, 'agent');
  return private.restore_line(restore_subscriber.organization_id, restore_subscriber.subscriber_id);
end;
$$;
comment on function public.restore_subscriber(uuid, uuid) is 'Restores a suspended line (agents and above).';

create or replace function public.cancel_subscriber(organization_id uuid, subscriber_id uuid, reason text default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  command_id uuid;
begin
  perform private.require_role(cancel_subscriber.organization_id, 'operator');
  line := private.lock_line(cancel_subscriber.organization_id, cancel_subscriber.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'cancel');
  command_id := private.enqueue_command(line, 'deactivate', private.carrier_payload(line), private.snapshot(line));
  update public.subscribers s set status = 'cancelled', suspend_reason = null, cancelled_at = now()
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.end_subscriptions(line.organization_id, line.id, now());
  perform private.log_event(line, 'cancel_requested', cancel_subscriber.reason, '{}', command_id);
  return line;
end;
$$;
comment on function public.cancel_subscriber(uuid, uuid, text) is 'Cancels a line (operators): billing stops now, the number is released when the carrier confirms.';

create or replace function public.change_plan(organization_id uuid, subscriber_id uuid, plan_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(change_plan.organization_id, 'agent');
  return private.change_plan_line(change_plan.organization_id, change_plan.subscriber_id, change_plan.plan_id);
end;
$$;
comment on function public.change_plan(uuid, uuid, uuid) is 'Moves a line to another plan: an upgrade (same or higher price) now, a downgrade at the end of the billing period. Returns when: ''now'' or ''at YYYY-MM-DD''.';

create or replace function public.add_add_on(organization_id uuid, subscriber_id uuid, add_on_id uuid)
returns public.subscriber_add_ons
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(add_add_on.organization_id, 'agent');
  return private.add_add_on_line(add_add_on.organization_id, add_add_on.subscriber_id, add_add_on.add_on_id);
end;
$$;
comment on function public.add_add_on(uuid, uuid, uuid) is 'Adds an add-on to a line (agents and above); one-off packs last 30 days.';

create or replace function public.swap_sim(organization_id uuid, subscriber_id uuid, new_sim_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  sim public.sim_cards;
  command_id uuid;
begin
  perform private.require_role(swap_sim.organization_id, 'agent');
  line := private.lock_line(swap_sim.organization_id, swap_sim.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'swap the SIM of');
  select c.* into sim from public.sim_cards c where c.organization_id = line.organization_id and c.id = swap_sim.new_sim_id for update;
  if sim.id is null then
    raise exception 'there is no SIM % in this organization', swap_sim.new_sim_id using errcode = 'P0002';
  end if;
  if sim.state <> 'inventory' then
    raise exception 'SIM % is % (only SIMs in inventory can be swapped in)', sim.iccid, sim.state using errcode = 'P0001';
  end if;
  if sim.carrier_id <> line.carrier_id then
    raise exception 'SIM % belongs to another carrier than line %', sim.iccid, coalesce(line.mdn, line.id::text) using errcode = 'P0001';
  end if;
  command_id := private.enqueue_command(line, 'swap_sim',
    private.carrier_payload(line, jsonb_build_object('new_iccid', sim.iccid)),
    private.snapshot(line, jsonb_build_object('new_sim_id', sim.id)));
  perform private.set_sim_state(line.organization_id, sim.id, 'assigned');
  update public.subscribers s set current_sim_id = sim.id
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'sim_swap_requested', null, jsonb_build_object('new_iccid', sim.iccid), command_id);
  return line;
end;
$$;
comment on function public.swap_sim(uuid, uuid, uuid) is 'Moves a line to another SIM from inventory (agents and above), for a lost, damaged or eSIM swap.';

create or replace function public.change_device(organization_id uuid, subscriber_id uuid, device_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  device public.devices;
  command_id uuid;
begin
  perform private.require_role(change_device.organization_id, 'agent');
  line := private.lock_line(change_device.organization_id, change_device.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'change the device of');
  select d.* into device from public.devices d where d.organization_id = line.organization_id and d.id = change_device.device_id;
  if device.id is null then
    raise exception 'there is no device % in this organization', change_device.device_id using errcode = 'P0002';
  end if;
  if device.compatibility = 'incompatible' then
    raise exception 'device % (%) is not compatible with the network', device.imei, coalesce(device.model, 'unknown model')
      using errcode = 'P0001';
  end if;
  command_id := private.enqueue_command(line, 'change_device',
    private.carrier_payload(line, jsonb_build_object('new_imei', device.imei)), private.snapshot(line));
  update public.subscribers s set current_device_id = device.id
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  perform private.log_event(line, 'device_change_requested', null, jsonb_build_object('imei', device.imei), command_id);
  return line;
end;
$$;
comment on function public.change_device(uuid, uuid, uuid) is 'Records a new handset on a line and tells the carrier (agents and above).';

create or replace function public.port_in(
  organization_id uuid, account_id uuid, mdn text, sim_id uuid, plan_id uuid, losing_carrier text,
  account_number text, pin text, device_id uuid default null)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  normalized text := public.normalize_mdn(port_in.mdn);
  command_id uuid;
begin
  perform private.require_role(port_in.organization_id, 'operator');
  if normalized is null then
    raise exception 'MDN % is not a valid phone number', port_in.mdn using errcode = '23514';
  end if;
  -- Ordered like an activation, then switched to a port: same checks on account, SIM, plan, device.
  line := public.activate_subscriber(port_in.organization_id, port_in.account_id, port_in.sim_id, port_in.plan_id, port_in.device_id);
  update public.carrier_commands c
     set kind = 'port_in',
         payload = c.payload || jsonb_build_object('mdn', normalized, 'losing_carrier', port_in.losing_carrier)
   where c.organization_id = line.organization_id and c.subscriber_id = line.id and c.status = 'pending'
  returning c.id into command_id;
  update public.subscribers s set mdn = normalized
   where s.organization_id = line.organization_id and s.id = line.id returning * into line;
  insert into public.port_requests (organization_id, subscriber_id, direction, mdn, other_carrier, account_number, pin)
  values (line.organization_id, line.id, 'in', normalized, port_in.losing_carrier, port_in.account_number, port_in.pin);
  perform private.log_event(line, 'port_in_requested', null, jsonb_build_object('mdn', normalized, 'losing_carrier', port_in.losing_carrier), command_id);
  return line;
end;
$$;
comment on function public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid) is 'Brings a customer''s number from another carrier (operators). The line is pending until the port completes.';

create or replace function public.port_out(organization_id uuid, subscriber_id uuid, gaining_carrier text)
returns public.port_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
  command_id uuid;
  request public.port_requests;
begin
  perform private.require_role(port_out.organization_id, 'operator');
  line := private.lock_line(port_out.organization_id, port_out.subscriber_id);
  perform private.require_line_status(line, array['active', 'suspended']::public.line_status[], 'port out');
  command_id := private.enqueue_command(line, 'port_out',
    private.carrier_payload(line, jsonb_build_object('gaining_carrier', port_out.gaining_carrier)), private.snapshot(line));
  insert into public.port_requests (organization_id, subscriber_id, direction, mdn, other_carrier)
  values (line.organization_id, line.id, 'out', line.mdn, port_out.gaining_carrier) returning * into request;
  perform private.log_event(line, 'port_out_requested', null, jsonb_build_object('gaining_carrier', port_out.gaining_carrier), command_id);
  return request;
end;
$$;
comment on function public.port_out(uuid, uuid, text) is 'Releases a line''s number to another carrier (operators); billing stops when the carrier confirms.';

revoke all on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text), public.suspend_subscriber(uuid, uuid, public.suspend_reason),
  public.restore_subscriber(uuid, uuid), public.cancel_subscriber(uuid, uuid, text), public.change_plan(uuid, uuid, uuid),
  public.add_add_on(uuid, uuid, uuid), public.swap_sim(uuid, uuid, uuid), public.change_device(uuid, uuid, uuid),
  public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid), public.port_out(uuid, uuid, text) from public, anon;
grant execute on function public.activate_subscriber(uuid, uuid, uuid, uuid, uuid, text), public.suspend_subscriber(uuid, uuid, public.suspend_reason),
  public.restore_subscriber(uuid, uuid), public.cancel_subscriber(uuid, uuid, text), public.change_plan(uuid, uuid, uuid),
  public.add_add_on(uuid, uuid, uuid), public.swap_sim(uuid, uuid, uuid), public.change_device(uuid, uuid, uuid),
  public.port_in(uuid, uuid, text, uuid, uuid, text, text, text, uuid), public.port_out(uuid, uuid, text) to authenticated, service_role;

-- >>> sql/20_domain/50_carrier_results.sql (sha256 85cd9f7e32acb7fd0c67baf25d4b054e29286329ab448fdb2cbfd6c6e2f59806)
-- The carrier's answer. The worker (or a carrier callback) reports each command's outcome
-- here: success finalizes the line's network state; refusal restores the business state
-- the command was issued from and records the carrier's reason.

create or replace function public.complete_carrier_command(
  organization_id uuid, command_id uuid, succeeded boolean, result jsonb default '{}', error text default null)
returns public.carrier_commands
language plpgsql
security definer
set search_path = ''
as $$
declare
  command public.carrier_commands;
  line public.subscribers;
  snapshot jsonb;
  sim jsonb;
  outcome public.command_status := case when succeeded then 'succeeded' else 'failed' end;
begin
  select c.* into command from public.carrier_commands c
   where c.organization_id = complete_carrier_command.organization_id and c.id = complete_carrier_command.command_id
   for update;
  if command.id is null then
    raise exception 'there is no carrier command % in this organization', complete_carrier_command.command_id using errcode = 'P0002';
  end if;
  if command.status in ('succeeded', 'failed', 'dead') then
    if command.status = outcome then
      return command;  -- a repeated callback: already applied
    end if;
    raise exception 'carrier command % already ended as %', command.id, command.status using errcode = 'P0001';
  end if;
  line := private.lock_line(command.organization_id, command.subscriber_id);
  snapshot := command.rollback_state;

  if succeeded then
    case command.kind
      when 'activate', 'port_in' then
        update public.subscribers s set status = 'active', network_status = 'active', activated_at = now(),
               mdn = coalesce(public.normalize_mdn(result ->> 'mdn'), s.mdn)
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'active');
        update public.port_requests p set status = 'completed', completed_at = now()
         where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'in' and p.status = 'submitted';
      when 'suspend' then
        update public.subscribers s set network_status = 'suspended'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'suspended');
      when 'restore' then
        update public.subscribers s set network_status = 'active'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'active');
      when 'deactivate' then
        update public.subscribers s set network_status = 'deactivated'
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'deactivated');
      when 'port_out' then
        update public.subscribers s set status = 'ported_out', network_status = 'deactivated', suspend_reason = null, cancelled_at = now()
         where s.organization_id = line.organization_id and s.id = line.id returning * into line;
        perform private.set_sim_state(line.organization_id, line.current_sim_id, 'deactivated');
        perform private.end_subscriptions(line.organization_id, line.id, now());
        update public.port_requests p set status = 'completed', completed_at = now()
         where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'out' and p.status = 'submitted';
      when 'swap_sim' then
        perform private.set_sim_state(line.organization_id, (snapshot ->> 'current_sim_id')::uuid, 'deactivated');
        perform private.set_sim_state(line.organization_id, line.current_sim_id,
          case line.status when 'suspended' then 'suspended'::public.sim_state else 'active' end);
      when 'change_plan' then
        update public.subscriptions s set carrier_confirmed_at = now()
         where s.organization_id = line.organization_id and s.id = (snapshot ->> 'new_subscription_id')::uuid;
      when 'change_device' then
        null;  -- the business record already names the new device
    end case;
    perform private.log_event(line, command.kind::text || '_confirmed', null,
      coalesce(result, '{}'), command.id);
  else
    -- Put the line (and its SIMs) back as they were when the command was issued.
    update public.subscribers s
       set status = (snapshot ->> 'status')::public.line_status,
           network_status = (snapshot ->> 'network_status')::public.network_status,
           suspend_reason = (snapshot ->> 'suspend_reason')::public.suspend_reason,
           current_sim_id = (snapshot ->> 'current_sim_id')::uuid,
           current_device_id = (snapshot ->> 'current_device_id')::uuid,
           cancelled_at = case when command.kind = 'deactivate' then null else s.cancelled_at end
     where s.organization_id = line.organization_id and s.id = line.id;
    for sim in select * from jsonb_array_elements(snapshot -> 'sims') loop
      perform private.set_sim_state(line.organization_id, (sim ->> 'id')::uuid, (sim ->> 'state')::public.sim_state);
    end loop;
    if command.kind in ('activate', 'port_in') then
      -- A line the carrier never accepted: it failed, its SIM goes back to inventory.
      update public.subscribers s set status = 'failed', network_status = 'none', current_sim_id = null
       where s.organization_id = line.organization_id and s.id = line.id;
      perform private.end_subscriptions(line.organization_id, line.id, now());
      update public.port_requests p set status = 'rejected', rejection_reason = complete_carrier_command.error
       where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'in' and p.status = 'submitted';
    elsif command.kind = 'change_plan' and not coalesce((snapshot ->> 'scheduled')::boolean, false) then
      -- An upgrade the carrier refused: back to the previous plan. (A refused scheduled
      -- downgrade keeps its new subscription; the refusal in the feed tells staff to retry.)
      delete from public.subscriptions s
       where s.organization_id = line.organization_id and s.id = (snapshot ->> 'new_subscription_id')::uuid;
      update public.subscriptions s set effective = tstzrange(lower(s.effective), (snapshot ->> 'subscription_upper')::timestamptz, '[)')
       where s.organization_id = line.organization_id and s.id = (snapshot ->> 'subscription_id')::uuid;
    elsif command.kind = 'deactivate' then
      update public.subscriptions s set effective = tstzrange(lower(s.effective), null, '[)')
       where s.organization_id = line.organization_id and s.subscriber_id = line.id
         and s.id = (select s2.id from public.subscriptions s2 where s2.organization_id = line.organization_id
                     and s2.subscriber_id = line.id order by lower(s2.effective) desc limit 1);
    elsif command.kind = 'port_out' then
      update public.port_requests p set status = 'rejected', rejection_reason = complete_carrier_command.error
       where p.organization_id = line.organization_id and p.subscriber_id = line.id and p.direction = 'out' and p.status = 'submitted';
    end if;
    select s.* into line from public.subscribers s where s.organization_id = command.organization_id and s.id = command.subscriber_id;
    perform private.log_event(line, command.kind::text || '_refused',
      coalesce(complete_carrier_command.error, 'no reason given'), coalesce(result, '{}'), command.id);
  end if;

  update public.carrier_commands c
     set status = outcome, result = complete_carrier_command.result, error = complete_carrier_command.error,
         carrier_request_id = coalesce(complete_carrier_command.result ->> 'requestId', c.carrier_request_id), completed_at = now()
   where c.organization_id = command.organization_id and c.id = command.id
  returning * into command;
  return command;
end;
$$;
comment on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) is 'Records the carrier''s answer to a command (services only): success finalizes the network state, refusal restores the business state with the carrier''s reason. Repeating the same answer changes nothing.';
revoke all on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) from public, anon, authenticated;
grant execute on function public.complete_carrier_command(uuid, uuid, boolean, jsonb, text) to service_role;

-- Scheduled downgrades whose day has come: ask the carrier now (the server's scheduler calls it).
create or replace function public.apply_scheduled_plan_changes(as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  due record;
  line public.subscribers;
  queued integer := 0;
begin
  for due in
    select s.organization_id, s.subscriber_id, s.id, p.carrier_rate_plan_id
    from public.subscriptions s
    join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
    join public.subscribers l on l.organization_id = s.organization_id and l.id = s.subscriber_id
    where lower(s.effective) <= as_of and s.reason = 'downgrade' and s.carrier_confirmed_at is null
      and l.status in ('active', 'suspended')
      and not exists (select 1 from public.carrier_commands c where c.organization_id = s.organization_id
                      and c.subscriber_id = s.subscriber_id and c.status in ('pending', 'in_flight'))
      and not exists (select 1 from public.carrier_commands c where c.organization_id = s.organization_id
                      and c.subscriber_id = s.subscriber_id and c.kind = 'change_plan'
                      and c.rollback_state ->> 'new_subscription_id' = s.id::text)
  loop
    line := private.lock_line(due.organization_id, due.subscriber_id);
    begin
      perform private.enqueue_command(line, 'change_plan',
        private.carrier_payload(line) || jsonb_build_object('rate_plan',
          (select r.code from public.carrier_rate_plans r where r.organization_id = line.organization_id and r.id = due.carrier_rate_plan_id)),
        private.snapshot(line, jsonb_build_object('new_subscription_id', due.id, 'scheduled', true)));
      queued := queued + 1;
    exception when sqlstate 'P0001' then
      -- A carrier limit (daily actions): keep the others going; this one is retried next run.
      perform private.log_event(line, 'plan_change_deferred', sqlerrm, jsonb_build_object('subscription_id', due.id));
    end;
  end loop;
  return queued;
end;
$$;
comment on function public.apply_scheduled_plan_changes(timestamptz) is 'Queues the carrier plan change of every downgrade whose period has started (services only); returns how many.';
revoke all on function public.apply_scheduled_plan_changes(timestamptz) from public, anon, authenticated;
grant execute on function public.apply_scheduled_plan_changes(timestamptz) to service_role;

-- >>> sql/20_domain/60_activity_and_self_service.sql (sha256 0c2766cdc4c67771a0599819918ea380361fbc37fb2ab98917a48eb513cb3166)
-- The activity feed of a line, and what customers may do themselves.

create or replace function public.subscriber_activity(subscriber_id uuid, max_rows integer default 200)
returns table (
  occurred_at timestamptz,
  kind text,
  reason text,
  actor text,
  details jsonb,
  command_status public.command_status,
  source text
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid;
begin
  select s.organization_id into org from public.subscribers s where s.id = subscriber_activity.subscriber_id;
  if org is null then
    raise exception 'there is no line %', subscriber_activity.subscriber_id using errcode = 'P0002';
  end if;
  perform private.require_role(org, 'viewer');
  return query
  select x.occurred_at, x.kind, x.reason, x.actor, x.details, x.command_status, x.source
  from (
    select e.occurred_at, e.kind, e.reason,
           coalesce(u.email::text, e.actor_name, case when e.actor_user_id is null then 'system' else e.actor_user_id::text end) as actor,
           e.details, c.status as command_status, 'lifecycle'::text as source, e.id as tiebreak
    from public.subscriber_events e
    left join auth.users u on u.id = e.actor_user_id
    left join public.carrier_commands c on c.organization_id = e.organization_id and c.id = e.command_id
    where e.organization_id = org and e.subscriber_id = subscriber_activity.subscriber_id
    union all
    select n.created_at, 'note', null, coalesce(u.email::text, 'system'), jsonb_build_object('body', n.body), null, 'note', 0
    from public.notes n
    left join auth.users u on u.id = n.author_id
    where n.organization_id = org and n.subscriber_id = subscriber_activity.subscriber_id
  ) x
  order by x.occurred_at desc, x.tiebreak desc
  limit max_rows;
end;
$$;
comment on function public.subscriber_activity(uuid, integer) is 'A line''s timeline, newest first: state changes with actor and reason, carrier requests and their outcomes, plan changes, add-ons and notes (staff of the line''s organization).';
revoke all on function public.subscriber_activity(uuid, integer) from public, anon;
grant execute on function public.subscriber_activity(uuid, integer) to authenticated, service_role;

-- Self-service: a customer acts on their own account's lines, when the operator allows the
-- action in organizations.settings -> 'self_service' (keys change_plan, add_add_on, report_lost).
create or replace function private.customer_line(subscriber_id uuid, action text)
returns public.subscribers
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  line public.subscribers;
begin
  select s.* into line from public.subscribers s
   where s.id = customer_line.subscriber_id and s.account_id = any (private.customer_account_ids());
  if line.id is null then
    raise exception 'line % is not on your account', customer_line.subscriber_id using errcode = '42501';
  end if;
  if not coalesce((select (o.settings -> 'self_service' ->> customer_line.action)::boolean
                   from public.organizations o where o.id = line.organization_id), false) then
    raise exception 'your provider does not offer this online (%); please contact customer care', replace(customer_line.action, '_', ' ')
      using errcode = '42501';
  end if;
  return line;
end;
$$;
revoke all on function private.customer_line(uuid, text) from public;

create or replace function public.self_service_change_plan(subscriber_id uuid, plan_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers := private.customer_line(self_service_change_plan.subscriber_id, 'change_plan');
begin
  if not exists (select 1 from public.plans p where p.organization_id = line.organization_id and p.id = self_service_change_plan.plan_id
                 and p.self_service and p.status = 'active') then
    raise exception 'this plan cannot be chosen online' using errcode = '42501';
  end if;
  return private.change_plan_line(line.organization_id, line.id, self_service_change_plan.plan_id);
end;
$$;
comment on function public.self_service_change_plan(uuid, uuid) is 'A customer moves one of their lines to another plan offered online (upgrade now, downgrade at period end).';

create or replace function public.self_service_add_add_on(subscriber_id uuid, add_on_id uuid)
returns public.subscriber_add_ons
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers := private.customer_line(self_service_add_add_on.subscriber_id, 'add_add_on');
begin
  if not exists (select 1 from public.add_ons a where a.organization_id = line.organization_id and a.id = self_service_add_add_on.add_on_id
                 and a.self_service and a.active) then
    raise exception 'this add-on cannot be bought online' using errcode = '42501';
  end if;
  return private.add_add_on_line(line.organization_id, line.id, self_service_add_add_on.add_on_id);
end;
$$;
comment on function public.self_service_add_add_on(uuid, uuid) is 'A customer adds an add-on offered online to one of their lines.';

create or replace function public.self_service_report_lost(subscriber_id uuid)
returns public.subscribers
language plpgsql
security definer
set search_path = ''
as $$
declare
  line public.subscribers := private.customer_line(self_service_report_lost.subscriber_id, 'report_lost');
begin
  return private.suspend_line(line.organization_id, line.id, 'lost_or_stolen');
end;
$$;
comment on function public.self_service_report_lost(uuid) is 'A customer suspends a lost or stolen phone''s line at once.';

revoke all on function public.self_service_change_plan(uuid, uuid), public.self_service_add_add_on(uuid, uuid),
  public.self_service_report_lost(uuid) from public, anon;
grant execute on function public.self_service_change_plan(uuid, uuid), public.self_service_add_add_on(uuid, uuid),
  public.self_service_report_lost(uuid) to authenticated;

-- >>> sql/20_domain/70_policies.sql (sha256 e74f5d0aa5fe231d2c450e68583533c4b7fcd52dcf793e6649be42ef1eef81f2)
-- Who sees and changes what in the subscriber domain. Staff read their organization's rows;
-- writes follow the role rules (admins: catalog; agents: customer care; operators:
-- inventory); line state changes only through the lifecycle functions. Customers read
-- their own account, its lines, plans, usage and SIMs.

create or replace function private.customer_line_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.id), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;
comment on function private.customer_line_ids() is 'Lines of the accounts the caller is a self-service customer of.';

create or replace function private.customer_sim_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.current_sim_id) filter (where s.current_sim_id is not null), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;

create or replace function private.customer_device_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(s.current_device_id) filter (where s.current_device_id is not null), '{}') from public.subscribers s
  where s.account_id = any (private.customer_account_ids())
$$;
revoke all on function private.customer_line_ids(), private.customer_sim_ids(), private.customer_device_ids() from public;
grant execute on function private.customer_line_ids(), private.customer_sim_ids(), private.customer_device_ids() to authenticated, service_role;

-- Privileges: nothing for anon; authenticated gets what policies then narrow.
revoke all on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons, public.accounts, public.sim_cards,
  public.devices, public.subscribers, public.subscriptions, public.subscriber_add_ons, public.port_requests, public.notes,
  public.carrier_commands, public.subscriber_events from anon, authenticated;
grant select, insert, update, delete on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons,
  public.sim_cards, public.devices, public.notes to authenticated;
grant select, insert, update on public.accounts to authenticated;
grant delete on public.accounts to authenticated;
grant select on public.subscribers, public.subscriptions, public.subscriber_add_ons, public.carrier_commands,
  public.subscriber_events to authenticated;
grant update (tags, external_id) on public.subscribers to authenticated;
-- Port secrets: every column but account_number and pin.
grant select (organization_id, id, subscriber_id, direction, mdn, other_carrier, status, rejection_reason, requested_at, completed_at)
  on public.port_requests to authenticated;
grant all on public.carriers, public.carrier_rate_plans, public.plans, public.add_ons, public.accounts, public.sim_cards,
  public.devices, public.subscribers, public.subscriptions, public.subscriber_add_ons, public.port_requests, public.notes,
  public.carrier_commands, public.subscriber_events to service_role;

-- Catalog: staff read; admins manage; customers see what is on sale.
drop policy if exists "Members can view their carriers" on public.carriers;
create policy "Members can view their carriers" on public.carriers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage carriers" on public.carriers;
create policy "Admins manage carriers" on public.carriers for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members can view carrier rate plans" on public.carrier_rate_plans;
create policy "Members can view carrier rate plans" on public.carrier_rate_plans for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage carrier rate plans" on public.carrier_rate_plans;
create policy "Admins manage carrier rate plans" on public.carrier_rate_plans for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and customers can view plans" on public.plans;
create policy "Members and customers can view plans" on public.plans for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[])
         or (status = 'active' and organization_id = any ((select private.customer_org_ids())::uuid[])));
drop policy if exists "Admins manage plans" on public.plans;
create policy "Admins manage plans" on public.plans for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and customers can view add-ons" on public.add_ons;
create policy "Members and customers can view add-ons" on public.add_ons for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[])
         or (active and organization_id = any ((select private.customer_org_ids())::uuid[])));
drop policy if exists "Admins manage add-ons" on public.add_ons;
create policy "Admins manage add-ons" on public.add_ons for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

-- Accounts: staff read, agents write, admins delete; customers read their own.
drop policy if exists "Members and the customer can view accounts" on public.accounts;
create policy "Members and the customer can view accounts" on public.accounts for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents can add accounts" on public.accounts;
create policy "Agents can add accounts" on public.accounts for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Agents can edit accounts" on public.accounts;
create policy "Agents can edit accounts" on public.accounts for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Admins can delete accounts" on public.accounts;
create policy "Admins can delete accounts" on public.accounts for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

-- Inventory: staff read; operators manage SIMs; agents record devices (BYOD); customers see theirs.
drop policy if exists "Members and the customer can view SIMs" on public.sim_cards;
create policy "Members and the customer can view SIMs" on public.sim_cards for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_sim_ids())::uuid[]));
drop policy if exists "Operators manage SIM inventory" on public.sim_cards;
create policy "Operators manage SIM inventory" on public.sim_cards for all to authenticated
  using (organization_id = any ((select private.user_org_ids('operator'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('operator'))::uuid[]));

drop policy if exists "Members and the customer can view devices" on public.devices;
create policy "Members and the customer can view devices" on public.devices for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or id = any ((select private.customer_device_ids())::uuid[]));
drop policy if exists "Agents manage devices" on public.devices;
create policy "Agents manage devices" on public.devices for all to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

-- Lines and what hangs off them: read by staff and the line's customer; written by functions.
drop policy if exists "Members and the customer can view lines" on public.subscribers;
create policy "Members and the customer can view lines" on public.subscribers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents can tag lines" on public.subscribers;
create policy "Agents can tag lines" on public.subscribers for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

drop policy if exists "Members and the customer can view subscriptions" on public.subscriptions;
create policy "Members and the customer can view subscriptions" on public.subscriptions for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members and the customer can view line add-ons" on public.subscriber_add_ons;
create policy "Members and the customer can view line add-ons" on public.subscriber_add_ons for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members and the customer can view ports" on public.port_requests;
create policy "Members and the customer can view ports" on public.port_requests for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or subscriber_id = any ((select private.customer_line_ids())::uuid[]));

drop policy if exists "Members can view carrier commands" on public.carrier_commands;
create policy "Members can view carrier commands" on public.carrier_commands for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members can view line events" on public.subscriber_events;
create policy "Members can view line events" on public.subscriber_events for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

-- Notes: staff only; agents write their own; admins tidy up.
drop policy if exists "Members can view notes" on public.notes;
create policy "Members can view notes" on public.notes for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Agents write notes as themselves" on public.notes;
create policy "Agents write notes as themselves" on public.notes for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and author_id = (select auth.uid()));
drop policy if exists "Authors and admins edit notes" on public.notes;
create policy "Authors and admins edit notes" on public.notes for update to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[])
         or (author_id = (select auth.uid()) and organization_id = any ((select private.user_org_ids('agent'))::uuid[])))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));
drop policy if exists "Authors and admins delete notes" on public.notes;
create policy "Authors and admins delete notes" on public.notes for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[])
         or (author_id = (select auth.uid()) and organization_id = any ((select private.user_org_ids('agent'))::uuid[])));

-- >>> sql/20_domain/80_audit.sql (sha256 eeefacf57467d5ea3ea299dcce0afb1fdd2c1c4ae4d1e4140bb2ae4b3b29d590)
-- Every business table of the domain writes the audit trail. The event log
-- (subscriber_events) is itself append-only history and is not audited twice.
select audit.enable('public.carriers', 'catalog');
select audit.enable('public.carrier_rate_plans', 'catalog');
select audit.enable('public.plans', 'catalog');
select audit.enable('public.add_ons', 'catalog');
select audit.enable('public.accounts', 'customer_care');
select audit.enable('public.sim_cards', 'operations');
select audit.enable('public.devices', 'customer_care');
select audit.enable('public.subscribers', 'customer_care');
select audit.enable('public.subscriptions', 'customer_care');
select audit.enable('public.subscriber_add_ons', 'customer_care');
select audit.enable('public.port_requests', 'customer_care', excluded_columns => array['account_number', 'pin']);
select audit.enable('public.notes', 'customer_care');
select audit.enable('public.carrier_commands', 'operations');
