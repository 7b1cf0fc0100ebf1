-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/20_domain/20_validation.sql (sha256 adc30b9ee9c8728fa88d1f69b8b8217097dc261395827cc85c0ac8f3d481ba39)
-- Validation with messages an operator understands. The triggers run before the constraints
-- (unique indexes, the exclusion constraint) that back them up, so a bad row is refused
-- with a SQLSTATE and a plain sentence, never a bare constraint name. The two that look at
-- other rows are security definer, so row-level security cannot hide a conflicting row.
--
-- Bulk loaders (`wingtel seed demo`, the BeQuick migration) check uniqueness set-based before
-- they write and set `wingtel.bulk_load = on` for their transaction: the per-row look-ups
-- below are then skipped, because their plan is cached while the table is still empty and
-- degrades to a scan of the organization's lines (quadratic over a load). The unique index and
-- the exclusion constraint still refuse any duplicate or overlap; only the sentence is lost.

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
  check_conflicts boolean := new.status in ('pending', 'active', 'suspended')
    and coalesce(current_setting('wingtel.bulk_load', true), '') <> 'on';
begin
  if new.mdn is not null and not public.is_valid_mdn(new.mdn) then
    raise exception 'MDN % is not a valid E.164 number', new.mdn
      using errcode = '23514', hint = 'US numbers are +1 followed by ten digits, area code and exchange starting 2–9.';
  end if;
  if check_conflicts and new.mdn is not null and exists (
      select 1 from public.subscribers s
      where s.organization_id = new.organization_id and s.mdn = new.mdn and s.id <> new.id
        and s.status in ('pending', 'active', 'suspended')) then
    raise exception 'MDN % is already in use by another line', new.mdn using errcode = '23505';
  end if;
  if check_conflicts and new.current_sim_id is not null and exists (
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
  if coalesce(current_setting('wingtel.bulk_load', true), '') <> 'on' and exists (
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
