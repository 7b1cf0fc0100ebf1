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
