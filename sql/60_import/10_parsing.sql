-- Reading BeQuick values: dates in the formats exports use, prices, carriers, countries.
-- Each returns null for what it cannot read, so validation can report it with the row.

create or replace function public.parse_import_date(raw text)
returns date
language plpgsql
immutable
strict
parallel safe
set search_path = ''
as $$
declare
  s text := btrim(raw);
  parts text[];
  y integer;
  m integer;
  d integer;
begin
  if s ~ '^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$' then
    parts := regexp_match(s, '^(\d{4})-(\d{1,2})-(\d{1,2})');
    y := parts[1]::int; m := parts[2]::int; d := parts[3]::int;
  elsif s ~ '^\d{1,2}/\d{1,2}/(\d{4}|\d{2})( .*)?$' then
    parts := regexp_match(s, '^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})');
    m := parts[1]::int; d := parts[2]::int; y := parts[3]::int;
    if length(parts[3]) = 2 then
      y := y + case when y < 70 then 2000 else 1900 end;
    end if;
  elsif s ~ '^\d{8}$' then
    y := substr(s, 1, 4)::int; m := substr(s, 5, 2)::int; d := substr(s, 7, 2)::int;
  elsif s ~ '^\d{1,2}[- ][A-Za-z]{3}[- ]\d{4}$' then
    parts := regexp_match(s, '^(\d{1,2})[- ]([A-Za-z]{3})[- ](\d{4})$');
    d := parts[1]::int; m := array_position(array['jan','feb','mar','apr','may','jun','jul','aug','sep','oct','nov','dec'], lower(parts[2]));
    y := parts[3]::int;
  elsif s ~ '^[A-Za-z]{3}[A-Za-z]*\.? \d{1,2},? \d{4}$' then
    parts := regexp_match(s, '^([A-Za-z]{3})[A-Za-z]*\.? (\d{1,2}),? (\d{4})$');
    m := array_position(array['jan','feb','mar','apr','may','jun','jul','aug','sep','oct','nov','dec'], lower(parts[1]));
    d := parts[2]::int; y := parts[3]::int;
  else
    return null;
  end if;
  if y between 1900 and 2100 and m between 1 and 12 and d between 1 and
     (case when m = 2 then (case when (y % 4 = 0 and y % 100 <> 0) or y % 400 = 0 then 29 else 28 end)
           when m in (4, 6, 9, 11) then 30 else 31 end) then
    return make_date(y, m, d);
  end if;
  return null;
end;
$$;
comment on function public.parse_import_date(text) is 'A date as BeQuick exports write it: 2026-03-01 (with or without a time), 03/01/2026 and 3/1/26 (US order), 20260301, 01-Mar-2026, Mar 1, 2026. Null when it is none of these or not a real day.';

create or replace function public.parse_import_cents(raw text)
returns bigint
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when v ~ '^[0-9]{1,9}(\.[0-9]{1,2})?$' then round(v::numeric * 100)::bigint end
  from (select regexp_replace(btrim(raw), '^\$|\s|,|USD$', '', 'g') as v) as t
$$;
comment on function public.parse_import_cents(text) is 'A price in dollars (45, 45.00, $45.00, 1,045.50, 45.00 USD) as integer cents; null when it is not a price.';

create or replace function private.import_carrier_key(raw text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case k
    when 'vzw' then 'verizon' when 'verizonwireless' then 'verizon' when 'vz' then 'verizon'
    when 'attmobility' then 'att' when 'attwireless' then 'att' when 'cingular' then 'att'
    when 'tmo' then 'tmobile' when 'tmobileusa' then 'tmobile' when 'tmus' then 'tmobile'
    else k end
  from (select nullif(regexp_replace(lower(raw), '[^a-z0-9]', '', 'g'), '') as k) as t
$$;
comment on function private.import_carrier_key(text) is 'Carrier names and codes reduced to one key (letters and digits only, common aliases such as VZW, AT&T Mobility, TMO folded).';

create or replace function private.import_country(raw text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when k is null or k in ('US', 'USA', 'UNITEDSTATES', 'UNITEDSTATESOFAMERICA') then 'US'
    when k in ('CA', 'CAN', 'CANADA') then 'CA'
    when k in ('PR', 'PUERTORICO') then 'PR'
    when k ~ '^[A-Z]{2}$' then k
  end
  from (select nullif(regexp_replace(upper(raw), '[^A-Za-z]', '', 'g'), '') as k) as t
$$;
comment on function private.import_country(text) is 'ISO country code from what exports write (US, USA, United States, …); empty means US; null when unknown.';

revoke all on function public.parse_import_date(text), public.parse_import_cents(text) from public;
grant execute on function public.parse_import_date(text), public.parse_import_cents(text) to authenticated, service_role;
revoke all on function private.import_carrier_key(text), private.import_country(text) from public;
