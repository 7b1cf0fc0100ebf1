-- Finance reports and the invoice document. The reports are functions for analysts (and
-- `wingtel report`); invoice_html renders an invoice for the customer portal with the
-- caller's own row-level security (a customer gets only their own invoices).

create or replace function public.revenue_report(organization_id uuid, billing_month date)
returns table (
  jurisdiction text,
  invoices bigint,
  recurring_cents bigint,
  usage_cents bigint,
  one_off_cents bigint,
  discount_cents bigint,
  net_revenue_cents bigint,
  sales_tax_cents bigint,
  usf_cents bigint,
  e911_cents bigint,
  other_fees_cents bigint,
  billed_cents bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_role(revenue_report.organization_id, 'analyst');
  if revenue_report.billing_month is null or revenue_report.billing_month <> date_trunc('month', revenue_report.billing_month)::date then
    raise exception 'give the first day of the billing month, not %', revenue_report.billing_month using errcode = '22023';
  end if;
  return query
    select coalesce(i.jurisdiction, 'unknown'), count(distinct i.id),
           coalesce(sum(l.amount_cents) filter (where l.kind in ('recurring', 'proration', 'add_on')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind in ('usage', 'usage_adjustment')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind in ('one_off', 'credit')), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind = 'discount'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where l.kind <> 'tax'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'sales_tax'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'usf'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'e911'), 0)::bigint,
           coalesce(sum(l.amount_cents) filter (where t.kind = 'regulatory_fee'), 0)::bigint,
           coalesce(sum(l.amount_cents), 0)::bigint
    from public.invoices i
    join public.invoice_lines l on l.organization_id = i.organization_id and l.invoice_id = i.id
    left join public.tax_rates t on t.organization_id = i.organization_id and t.id = l.tax_rate_id
    where i.organization_id = revenue_report.organization_id and i.billing_month = revenue_report.billing_month and i.status <> 'void'
    group by 1
    order by 1;
end;
$$;
comment on function public.revenue_report(uuid, date) is 'Month-end revenue and tax liability per jurisdiction (the billed account''s county, state and country) for the invoices of a billing month (analysts and above): revenue by kind, discounts, each tax and fee, total billed.';

create or replace function public.ar_aging(organization_id uuid, as_of date default current_date)
returns table (
  account_id uuid,
  account_name text,
  invoices bigint,
  current_cents bigint,
  days_1_30_cents bigint,
  days_31_60_cents bigint,
  days_61_90_cents bigint,
  days_over_90_cents bigint,
  total_cents bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_role(ar_aging.organization_id, 'analyst');
  return query
    select a.id, a.name, count(*),
           coalesce(sum(o.owed) filter (where o.days <= 0), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 1 and 30), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 31 and 60), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days between 61 and 90), 0)::bigint,
           coalesce(sum(o.owed) filter (where o.days > 90), 0)::bigint,
           sum(o.owed)::bigint
    from (select i.account_id, ar_aging.as_of - i.due_on as days,
                 i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents as owed
          from public.invoices i
          where i.organization_id = ar_aging.organization_id and i.status in ('open', 'past_due')) o
    join public.accounts a on a.organization_id = ar_aging.organization_id and a.id = o.account_id
    where o.owed > 0
    group by a.id, a.name
    order by sum(o.owed) desc, a.name;
end;
$$;
comment on function public.ar_aging(uuid, date) is 'Accounts-receivable aging per account (analysts and above): what is owed on open and past-due invoices, by days past due as of a date.';

create or replace function private.html_escape(value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(replace(replace(coalesce(value, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
comment on function private.html_escape(text) is 'Escapes text for HTML element content and attribute values.';

create or replace function private.format_money(cents bigint, currency text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when cents < 0 then '-' else '' end
      || case currency when 'USD' then '$' when 'EUR' then '€' when 'GBP' then '£' else currency || ' ' end
      || to_char(abs(cents) / 100, 'FM999,999,999,990') || '.' || lpad((abs(cents) % 100)::text, 2, '0')
$$;
comment on function private.format_money(bigint, text) is 'Formats integer cents for people: -$1,234.05.';

create or replace function public.invoice_html(invoice_id uuid)
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select format($html$<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice %1$s</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse;width:100%%}
td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left}td.amount,th.amount{text-align:right}
.totals td{border:none}.muted{color:#666}</style></head>
<body>
<h1>%2$s</h1>
<p>Invoice <strong>%1$s</strong> · issued %3$s · due %4$s · status %5$s</p>
<p>%6$s<br><span class="muted">%7$s</span></p>
<p>Service period %8$s to %9$s</p>
<table><thead><tr><th>Description</th><th>Service</th><th class="amount">Qty</th><th class="amount">Amount</th></tr></thead><tbody>
%10$s
</tbody></table>
<table class="totals">
<tr><td>Subtotal</td><td class="amount">%11$s</td></tr>
<tr><td>Discounts</td><td class="amount">%12$s</td></tr>
<tr><td>Taxes and fees</td><td class="amount">%13$s</td></tr>
<tr><td><strong>Total</strong></td><td class="amount"><strong>%14$s</strong></td></tr>
<tr><td>Paid and credited</td><td class="amount">%15$s</td></tr>
<tr><td><strong>Amount due</strong></td><td class="amount"><strong>%16$s</strong></td></tr>
</table>
</body></html>
$html$,
    private.html_escape(i.display_number), private.html_escape(o.name), i.issued_on, i.due_on, i.status,
    private.html_escape(a.name),
    private.html_escape(concat_ws(', ', a.address_line1, a.city, a.state, a.postal_code)),
    i.period_start, i.period_end - 1,
    (select string_agg(format('<tr><td>%s</td><td>%s</td><td class="amount">%s</td><td class="amount">%s</td></tr>',
                              private.html_escape(l.description),
                              case when l.service_start is null then '' when l.service_end is null or l.service_end <= l.service_start + 1
                                   then l.service_start::text else l.service_start || ' – ' || (l.service_end - 1) end,
                              case when l.kind = 'tax' or l.quantity is null then '' else trim(trailing '.' from trim(trailing '0' from l.quantity::text)) || ' ' || coalesce(l.unit, '') end,
                              private.format_money(l.amount_cents, i.currency)), E'\n' order by l.line_number)
     from public.invoice_lines l where l.organization_id = i.organization_id and l.invoice_id = i.id),
    private.format_money(i.subtotal_cents, i.currency), private.format_money(i.discount_cents, i.currency),
    private.format_money(i.tax_cents, i.currency), private.format_money(i.total_cents, i.currency),
    private.format_money(-(i.amount_paid_cents + i.amount_credited_cents), i.currency),
    private.format_money(case when i.status in ('open', 'past_due')
                              then i.total_cents - i.amount_paid_cents - i.amount_credited_cents - i.amount_written_off_cents else 0 end, i.currency))
  from public.invoices i
  join public.accounts a on a.organization_id = i.organization_id and a.id = i.account_id
  join public.organizations o on o.id = i.organization_id
  where i.id = invoice_html.invoice_id
$$;
comment on function public.invoice_html(uuid) is 'The invoice as an HTML page for the customer portal, read with the caller''s row-level security (customers: their own invoices; staff: their organization''s). Null when the caller cannot see it.';

revoke all on function private.html_escape(text), private.format_money(bigint, text) from public;
grant execute on function private.html_escape(text), private.format_money(bigint, text) to authenticated, service_role;
revoke all on function public.revenue_report(uuid, date), public.ar_aging(uuid, date), public.invoice_html(uuid) from public, anon;
grant execute on function public.revenue_report(uuid, date), public.ar_aging(uuid, date), public.invoice_html(uuid) to authenticated, service_role;
