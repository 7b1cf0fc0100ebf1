-- Who reads SMS: staff of the organization read conversations, numbers and opt-outs; agents
-- and up answer (an outbound message an agent writes is queued for the outbox); admins manage
-- the organization's numbers. Customers read their own account's conversation. The webhooks
-- write as service_role.

revoke all on public.messaging_numbers, public.sms_messages, public.sms_opt_outs from anon, authenticated;
grant select on public.messaging_numbers, public.sms_messages, public.sms_opt_outs to authenticated;
grant insert, update, delete on public.messaging_numbers to authenticated;
grant insert on public.sms_messages to authenticated;
grant all on public.messaging_numbers, public.sms_messages, public.sms_opt_outs to service_role;
grant select on public.care_inbox to authenticated;
grant select on public.care_inbox to service_role;

drop policy if exists "Members can view messaging numbers" on public.messaging_numbers;
create policy "Members can view messaging numbers" on public.messaging_numbers for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));
drop policy if exists "Admins manage messaging numbers" on public.messaging_numbers;
create policy "Admins manage messaging numbers" on public.messaging_numbers for all to authenticated
  using (organization_id = any ((select private.user_org_ids('admin'))::uuid[]))
  with check (organization_id = any ((select private.user_org_ids('admin'))::uuid[]));

drop policy if exists "Members and the customer can view messages" on public.sms_messages;
create policy "Members and the customer can view messages" on public.sms_messages for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]) or account_id = any ((select private.customer_account_ids())::uuid[]));
-- An agent's answer: outbound, queued, signed by the agent, from one of the organization's numbers, not to an opted-out number.
drop policy if exists "Agents write outbound messages" on public.sms_messages;
create policy "Agents write outbound messages" on public.sms_messages for insert to authenticated
  with check (organization_id = any ((select private.user_org_ids('agent'))::uuid[])
              and direction = 'outbound' and status = 'accepted' and provider_sid is null and sent_by = (select auth.uid())
              and exists (select 1 from public.messaging_numbers n
                          where n.organization_id = sms_messages.organization_id and n.phone_number = sms_messages.from_number)
              and not exists (select 1 from public.sms_opt_outs o
                              where o.organization_id = sms_messages.organization_id and o.phone_number = sms_messages.to_number));

drop policy if exists "Members can view opt-outs" on public.sms_opt_outs;
create policy "Members can view opt-outs" on public.sms_opt_outs for select to authenticated
  using (organization_id = any ((select private.user_org_ids())::uuid[]));

create or replace trigger sms_messages_touch before update on public.sms_messages
  for each row execute function private.touch_updated_at();

select audit.enable('public.messaging_numbers', 'operations');
select audit.enable('public.sms_opt_outs', 'customer_care', key_columns => array['organization_id', 'phone_number']);
