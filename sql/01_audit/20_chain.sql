-- The hash chain. Entries are sealed after their transaction has finished, in sealing
-- order, so concurrent writers never wait on one another for the chain:
--   content_hash(e) = sha256(canonical text of e)
--   chain_hash(1)   = sha256(sha256('wingtel-audit:' || organization_id) || content_hash(e1))
--   chain_hash(n)   = sha256(chain_hash(n-1) || content_hash(en))

create or replace function audit.content_hash(e audit.entries)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(pg_catalog.convert_to(concat_ws(chr(31),
    e.organization_id::text, e.id::text,
    ((extract(epoch from e.occurred_at) * 1000000)::bigint)::text,
    e.txid::text, coalesce(e.actor_user_id::text, '\N'), coalesce(e.actor_name, '\N'), e.db_role,
    coalesce(e.request_id, '\N'), e.action, e.category, e.table_name, e.record_id,
    coalesce(e.row_data::text, '\N'), coalesce(e.changed_columns::text, '\N'),
    coalesce(e.old_values::text, '\N'), coalesce(e.new_values::text, '\N')), 'UTF8'))
$$;
comment on function audit.content_hash(audit.entries) is 'SHA-256 of an entry''s canonical text (every column, NULL spelled \N).';

create or replace function audit.genesis_hash(organization_id uuid)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(pg_catalog.convert_to('wingtel-audit:' || organization_id::text, 'UTF8'))
$$;

create or replace function audit.chain_step(state bytea, content bytea, seed bytea)
returns bytea
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.sha256(coalesce(state, seed) || content)
$$;

-- Running hash over a window: chain(content, seed) over (order by …).
create or replace aggregate audit.chain(bytea, bytea) (sfunc = audit.chain_step, stype = bytea);

create or replace function audit.seal(target_organization uuid default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  org uuid;
  sealed bigint := 0;
  added bigint;
  horizon xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
begin
  for org in
    select distinct e.organization_id from audit.entries e
    where (target_organization is null or e.organization_id = target_organization)
      and not exists (select 1 from audit.seals s where s.organization_id = e.organization_id and s.entry_id = e.id)
    order by 1
  loop
    insert into audit.chain_heads (organization_id, last_seq, last_hash)
      values (org, 0, audit.genesis_hash(org))
      on conflict (organization_id) do nothing;
    -- One sealer per organization at a time.
    perform 1 from audit.chain_heads h where h.organization_id = org for update;

    with head as (
      select h.last_seq, h.last_hash from audit.chain_heads h where h.organization_id = org
    ), pending as (
      select e.id, audit.content_hash(e) as content,
             row_number() over (order by e.id) as n
      from audit.entries e
      where e.organization_id = org
        and e.txid < horizon
        and not exists (select 1 from audit.seals s where s.organization_id = org and s.entry_id = e.id)
    ), chained as (
      select p.id, (select last_seq from head) + p.n as chain_seq,
             audit.chain(p.content, (select last_hash from head)) over (order by p.n rows between unbounded preceding and current row) as chain_hash
      from pending p
    ), inserted as (
      insert into audit.seals (organization_id, chain_seq, entry_id, chain_hash)
      select org, c.chain_seq, c.id, c.chain_hash from chained c
      returning chain_seq, chain_hash
    ), newest as (
      select i.chain_seq, i.chain_hash from inserted i order by i.chain_seq desc limit 1
    ), moved as (
      update audit.chain_heads h
         set last_seq = n.chain_seq, last_hash = n.chain_hash, sealed_at = now()
        from newest n
       where h.organization_id = org
      returning 1
    )
    select count(*) into added from inserted;
    sealed := sealed + added;
  end loop;
  return sealed;
end;
$$;
comment on function audit.seal(uuid) is 'Adds the entries of finished transactions to their organization''s hash chain; returns how many were sealed. The server''s scheduler (or pg_cron) calls it every few seconds; verify_audit_chain calls it first.';
revoke all on function audit.seal(uuid) from public;
grant execute on function audit.seal(uuid) to service_role;

create or replace function audit.verify_chain(target_organization uuid)
returns table (
  valid boolean,
  sealed_entries bigint,
  unsealed_entries bigint,
  first_broken_entry bigint,
  first_broken_seq bigint,
  problem text
)
language plpgsql
security definer
set search_path = ''
as $$
declare
  broken record;
  total bigint;
  pending bigint;
  head record;
begin
  perform audit.seal(target_organization);

  select count(*) into total from audit.seals s where s.organization_id = target_organization;
  select count(*) into pending from audit.entries e
   where e.organization_id = target_organization
     and not exists (select 1 from audit.seals s where s.organization_id = e.organization_id and s.entry_id = e.id);

  -- Recompute every link from the entries themselves and compare with the stored chain.
  select x.entry_id, x.chain_seq, x.reason into broken
  from (
    select s.entry_id, s.chain_seq,
           case
             when e.id is null then 'entry missing'
             when s.chain_seq <> row_number() over w then 'sequence gap before this seal'
             when s.chain_hash <> audit.chain(audit.content_hash(e), audit.genesis_hash(target_organization))
                                    over (w rows between unbounded preceding and current row)
               then 'content or chain hash does not match'
           end as reason
    from audit.seals s
    left join audit.entries e on e.organization_id = s.organization_id and e.id = s.entry_id
    where s.organization_id = target_organization
    window w as (order by s.chain_seq)
  ) x
  where x.reason is not null
  order by x.chain_seq
  limit 1;

  if broken.entry_id is not null then
    return query select false, total, pending, broken.entry_id, broken.chain_seq, broken.reason;
    return;
  end if;

  select h.last_seq, h.last_hash into head from audit.chain_heads h where h.organization_id = target_organization;
  if total > 0 and (head.last_seq is distinct from total
      or head.last_hash is distinct from (select s.chain_hash from audit.seals s
                                          where s.organization_id = target_organization order by s.chain_seq desc limit 1)) then
    return query select false, total, pending, null::bigint, head.last_seq, 'chain head does not match the newest seal (seals removed?)';
    return;
  end if;
  return query select true, total, pending, null::bigint, null::bigint, null::text;
end;
$$;
comment on function audit.verify_chain(uuid) is 'Seals what can be sealed, then recomputes an organization''s chain from its entries; reports the first broken entry, if any.';
revoke all on function audit.verify_chain(uuid) from public;
grant execute on function audit.verify_chain(uuid) to service_role;
