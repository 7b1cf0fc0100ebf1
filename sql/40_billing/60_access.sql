-- Who sees and changes billing. Staff read their organization's billing; admins set the
-- policy and the tax table; agents add one-off charges, credits and discounts. Invoices,
-- payments, the ledger, wallets and dunning change only through the billing functions.
-- Customers read their own invoices, lines, payments, credit notes, wallet and pending charges.
-- The ledger and invoice lines are append-only for every role.

create or replace function private.customer_invoice_ids()
returns uuid[]
language sql
stable
parallel safe
security definer
set search_path = ''
as $$
  select coalesce(array_agg(i.id), '{}') from public.invoices i
  where i.account_id = any (private.customer_account_ids())
$$;
comment on function private.customer_invoice_ids() is 'Invoices of the accounts the caller is a self-service customer of.';
revoke all on function private.customer_invoice_ids() from public;
grant execute on function private.customer_invoice_ids() to authenticated, service_role;

-- Every ledger statement must leave each transaction it writes balanced.
create or replace function private.check_ledger_balance()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  unbalanced record;
begin
  select n.transaction_id, sum(n.amount_cents) as off into unbalanced
  from new_rows n group by n.organization_id, n.transaction_id having sum(n.amount_cents) <> 0 limit 1;
  if found then
    raise exception 'ledger transaction % does not balance (off by % cents)', unbalanced.transaction_id, unbalanced.off
      using errcode = '23514', hint = 'Write all entries of a transaction in one statement; debits (positive) must equal credits (negative).';
  end if;
  return null;
end;
$$;
comment on function private.check_ledger_balance() is 'Statement trigger on ledger_entries: refuses a statement whose entries leave any transaction not summing to zero.';
revoke all on function private.check_ledger_balance() from public;

create or replace function private.forbid_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception '%.% is append-only: % is not allowed', tg_table_schema, tg_table_name, tg_op using errcode = '42501',
    hint = 'Correct billing with a credit note, a refund or a charge on the next invoice.';
end;
$$;
comment on function private.forbid_change() is 'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only billing tables (ledger entries, invoice lines).';
revoke all on function private.forbid_change() from public;

create or replace trigger ledger_entries_balanced after insert on public.ledger_entries
  referencing new table as new_rows for each statement execute function private.check_ledger_balance();
create or replace trigger ledger_entries_append_only before update or delete on public.ledger_entries
  for each row execute function private.forbid_change();
create or replace trigger ledger_entries_no_truncate before truncate on public.ledger_entries
  for each statement execute function private.forbid_change();
create or replace trigger invoice_lines_append_only before update or delete on public.invoice_lines
  for each row execute function private.forbid_change();
create or replace trigger invoice_lines_no_truncate before truncate on public.invoice_lines
  for each statement execute function private.forbid_change();

-- Privileges: nothing for anon; authenticated gets what the policies then narrow.
revoke all on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events from anon, authenticated;
grant select on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events to authenticated;
grant insert on public.billing_policies to authenticated;
grant update (invoice_prefix, credit_note_prefix, payment_terms_days, reminder_days, past_due_after_days, suspend_after_days,
  write_off_after_days, dunning_enabled, credit_unused_days, apply_wallet_to_invoices, tax_provider, updated_at)
  on public.billing_policies to authenticated;
grant insert, update, delete on public.tax_rates, public.account_discounts to authenticated;
grant insert, delete on public.account_charges to authenticated;
grant update (description, amount_cents, charge_on, subscriber_id) on public.account_charges to authenticated;
grant all on public.billing_policies, public.tax_rates, public.account_discounts, public.account_charges, public.bill_runs,
  public.invoices, public.invoice_lines, public.payments, public.credit_notes, public.wallet_transactions, public.ledger_entries,
  public.dunning_events to service_role;

drop policy if exists "Members can view the billing policy" on public.billing_policies;
create policy "Members can view the billing policy" on public.billing_policies for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins set the billing policy" on public.billing_policies;
create policy "Admins set the billing policy" on public.billing_policies for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));
drop policy if exists "Admins change the billing policy" on public.billing_policies;
create policy "Admins change the billing policy" on public.billing_policies for update to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members can view tax rates" on public.tax_rates;
create policy "Members can view tax rates" on public.tax_rates for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage tax rates" on public.tax_rates;
create policy "Admins manage tax rates" on public.tax_rates for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and the customer can view discounts" on public.account_discounts;
create policy "Members and the customer can view discounts" on public.account_discounts for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents manage discounts" on public.account_discounts;
create policy "Agents manage discounts" on public.account_discounts for all to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]));

drop policy if exists "Members and the customer can view charges" on public.account_charges;
create policy "Members and the customer can view charges" on public.account_charges for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
drop policy if exists "Agents add unbilled charges" on public.account_charges;
create policy "Agents add unbilled charges" on public.account_charges for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);
drop policy if exists "Agents change unbilled charges" on public.account_charges;
create policy "Agents change unbilled charges" on public.account_charges for update to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null)
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);
drop policy if exists "Agents remove unbilled charges" on public.account_charges;
create policy "Agents remove unbilled charges" on public.account_charges for delete to authenticated
  using (organization_id = any ((select private.user_org_ids('agent'))::uuid[]) and invoice_id is null);

drop policy if exists "Members can view bill runs" on public.bill_runs;
create policy "Members can view bill runs" on public.bill_runs for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

drop policy if exists "Members and the customer can view invoices" on public.invoices;
create policy "Members and the customer can view invoices" on public.invoices for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view invoice lines" on public.invoice_lines;
create policy "Members and the customer can view invoice lines" on public.invoice_lines for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or invoice_id = any ((select private.customer_invoice_ids())::uuid[]));

drop policy if exists "Members and the customer can view payments" on public.payments;
create policy "Members and the customer can view payments" on public.payments for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view credit notes" on public.credit_notes;
create policy "Members and the customer can view credit notes" on public.credit_notes for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Members and the customer can view wallet movements" on public.wallet_transactions;
create policy "Members and the customer can view wallet movements" on public.wallet_transactions for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));

drop policy if exists "Analysts can view the ledger" on public.ledger_entries;
create policy "Analysts can view the ledger" on public.ledger_entries for select to authenticated
  using (organization_id = any ((select private.user_org_ids('analyst'))::uuid[]));

drop policy if exists "Members can view dunning" on public.dunning_events;
create policy "Members can view dunning" on public.dunning_events for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

-- The audit trail: settings, charges and the money documents. Invoice lines and the ledger
-- are append-only and dunning_events is itself a history, so they are not audited twice.
select audit.enable('public.billing_policies', 'billing', key_columns => array['organization_id']);
select audit.enable('public.tax_rates', 'billing');
select audit.enable('public.account_discounts', 'billing');
select audit.enable('public.account_charges', 'billing');
select audit.enable('public.bill_runs', 'billing');
select audit.enable('public.invoices', 'billing');
select audit.enable('public.payments', 'billing');
select audit.enable('public.credit_notes', 'billing');
select audit.enable('public.wallet_transactions', 'billing');
