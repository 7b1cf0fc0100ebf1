-- Reading BeQuick values: dates in the formats exports use, prices, carriers, countries.
-- Each returns null for what it cannot read, so validation can report it with the row.

create or replace function public.parse_import_date(raw text)
returns date
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when p.y between 1900 and 2100 and p.m between 1 and 12 and p.d between 1 and
      case when p.m = 2 then case when (p.y % 4 = 0 and p.y % 100 <> 0) or p.y % 400 = 0 then 29 else 28 end
           when p.m in (4, 6, 9, 11) then 30 else 31 end
    then make_date(p.y, p.m, p.d)
  end
  from (
    select case when parts.yy < 100 then parts.yy + case when parts.yy < 70 then 2000 else 1900 end else parts.yy end as y,
           parts.m, parts.d
    from (
      select
        coalesce(iso[1], us[3], compact[1], dmy[3], mdy[3])::int as yy,
        coalesce(iso[2]::int, us[1]::int, compact[2]::int,
                 array_position(array['jan','feb','mar','apr','may','jun','jul','aug','sep','oct','nov','dec'], lower(coalesce(dmy[2], mdy[1])))) as m,
        coalesce(iso[3], us[2], compact[3], dmy[1], mdy[2])::int as d
      from (select btrim(raw) as s) as t,
        lateral (select regexp_match(t.s, '^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$') as iso,
                        regexp_match(t.s, '^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?: .*)?$') as us,
                        regexp_match(t.s, '^(\d{4})(\d{2})(\d{2})$') as compact,
                        regexp_match(t.s, '^(\d{1,2})[- ]([A-Za-z]{3})[- ](\d{4})$') as dmy,
                        regexp_match(t.s, '^([A-Za-z]{3})[A-Za-z]*\.? (\d{1,2}),? (\d{4})$') as mdy) as r
    ) as parts
  ) as p
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
