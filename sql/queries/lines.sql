-- name: LinesOfAccount :many
-- The lines of one account with their current plan, newest first.
-- params: organization_id, account_id
-- nullable: plan_code, price_cents
select l.id, l.mdn, l.status, l.network_status, p.code as plan_code, p.price_cents, l.created_at
from public.subscribers l
left join public.subscriptions s
  on s.organization_id = l.organization_id and s.subscriber_id = l.id and s.effective @> now()
left join public.plans p on p.organization_id = s.organization_id and p.id = s.plan_id
where l.organization_id = $1 and l.account_id = $2
order by l.created_at desc;

-- name: LineByMDN :one
-- One line by its number (E.164).
-- params: organization_id, mdn
select l.* from public.subscribers l where l.organization_id = $1 and l.mdn = $2;

-- name: LineCountsByStatus :many
-- How many lines an organization has in each state.
-- params: organization_id
-- nonnull: lines
select l.status, count(*) as lines from public.subscribers l where l.organization_id = $1 group by l.status order by l.status;

-- name: TagLine :execrows
-- Adds a tag to a line (agents and above, through row-level security).
-- params: organization_id, subscriber_id, tag
update public.subscribers set tags = array_append(tags, $3)
where organization_id = $1 and id = $2 and not ($3 = any (tags));
