#!/usr/bin/env python3
"""B6 (row-level security overhead) and the audit-trail overhead, measured in one run.

B6: the same tenant query as `authenticated` (an analyst of one organization, through the
real policy helpers) and as `service_role` (no RLS), over a 1M-row tenant table spread
across 10 organizations. Target: ratio <= 1.2; plans show one InitPlan per helper and no
sequential scan.

Audit: a bulk change of 100k rows of a table with the audit triggers against an identical
table without them (insert, update, delete). Target: ratio <= 2.

Uses psql against a scratch database prepared by `wingtel db reset --database wingtel_bench`
(shim, migrations, seed). Times are PostgreSQL's own (EXPLAIN ANALYZE "Execution Time",
which includes triggers). Writes benchmarks/results/tenancy.{json,md}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone

ORG_A = "10000000-0000-4000-8000-00000000000a"
ANALYST_A = "a0000000-0000-4000-8000-000000000005"
HERE = os.path.dirname(os.path.abspath(__file__))


def psql(url, sql, *, tuples=True):
    args = ["psql", url, "-X", "-v", "ON_ERROR_STOP=1", "-q"]
    if tuples:
        args += ["-A", "-t"]
    result = subprocess.run(args + ["-c", sql], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: psql failed: {result.stderr.strip()}\nstatement: {sql[:300]}")
    return result.stdout.strip()


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def explain(url, sql, role_setup, analyze=True):
    """Runs EXPLAIN (ANALYZE, FORMAT JSON) in a transaction that is rolled back."""
    options = "analyze, buffers off, format json" if analyze else "format json"
    out = psql(url, f"begin; {role_setup} explain ({options}) {sql}; rollback;")
    # The role setup prints its set_config results first; the plan JSON is the array after them.
    return json.loads(out[out.index("\n[") + 1:] if not out.startswith("[") else out)[0]


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def summary(values):
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "runs": len(values)}


AS_ANALYST = (f"select set_config('request.jwt.claims', '{{\"sub\":\"{ANALYST_A}\",\"role\":\"authenticated\"}}', true);"
              " set local role authenticated;")
AS_SERVICE = "select set_config('request.jwt.claims', '{\"role\":\"service_role\"}', true); set local role service_role;"


def prepare_rls_table(url, rows):
    progress(f"loading {rows:,} usage rows over 10 organizations …")
    psql(url, f"""
      drop table if exists public.bench_usage;
      insert into public.organizations (id, slug, name)
        select ('20000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'bench-org-' || n, 'Bench org ' || n
        from generate_series(1, 8) n on conflict do nothing;
      create table public.bench_usage (
        organization_id uuid not null, id bigint not null, subscriber_id bigint not null,
        recorded_at timestamptz not null, data_bytes bigint not null, amount_cents bigint not null,
        primary key (organization_id, id));
      insert into public.bench_usage
        select o.id, g, (g % 10000), timestamptz '2026-01-01' + (g % 365) * interval '1 day' + (g % 86400) * interval '1 second',
               (g * 7919) % 5000000, (g * 31) % 500
        from (select id, row_number() over (order by id) - 1 as k from public.organizations) o,
             generate_series(1, {rows // 10}) g;
      create index bench_usage_org_time_idx on public.bench_usage (organization_id, recorded_at);
      alter table public.bench_usage enable row level security;
      create policy "Members can read their organization's usage" on public.bench_usage for select to authenticated
        using (organization_id = any ((select private.user_org_ids())::uuid[]));
      grant select on public.bench_usage to authenticated, service_role;
    """, tuples=False)
    psql(url, "vacuum analyze public.bench_usage", tuples=False)
    return int(psql(url, "select count(*) from public.bench_usage"))


def bench_rls(url, reps):
    queries = {
        "one month of one organization (index range)":
            f"select count(*), sum(amount_cents) from public.bench_usage where organization_id = '{ORG_A}' "
            "and recorded_at >= '2026-06-01' and recorded_at < '2026-07-01'",
        "all of one organization (100k rows)":
            f"select count(*), sum(data_bytes) from public.bench_usage where organization_id = '{ORG_A}'",
        "top subscribers of one organization":
            f"select subscriber_id, sum(amount_cents) from public.bench_usage where organization_id = '{ORG_A}' "
            "group by 1 order by 2 desc limit 10",
    }
    results = []
    for label, sql in queries.items():
        progress(f"B6: {label}")
        for setup in (AS_ANALYST, AS_SERVICE):  # warm-up
            explain(url, sql, setup)
        user_times, service_times = [], []
        for _ in range(reps):
            user_times.append(explain(url, sql, AS_ANALYST)["Execution Time"])
            service_times.append(explain(url, sql, AS_SERVICE)["Execution Time"])
        plan = explain(url, sql, AS_ANALYST, analyze=False)["Plan"]
        nodes = list(plan_nodes(plan))
        init_plans = [n for n in nodes if n.get("Parent Relationship") == "InitPlan"]
        seq_scans = [n for n in nodes if n["Node Type"] == "Seq Scan"]
        plan_text = psql(url, f"begin; {AS_ANALYST} explain (costs off) {sql}; rollback;").split("\n", 1)[1]
        results.append({
            "query": label, "sql": sql,
            "authenticated_ms": summary(user_times), "service_role_ms": summary(service_times),
            "ratio_median": round(statistics.median(user_times) / statistics.median(service_times), 3),
            "init_plans": len(init_plans), "helper_calls_in_plan": plan_text.count("private.user_org_ids"),
            "sequential_scans": len(seq_scans), "plan": plan_text,
        })
    return results


AUDIT_SHAPES = {
    # A line as the subscriber domain will hold it: 16 columns, 5 indexes; the bulk change
    # suspends lines (status is indexed, so every index is touched).
    "subscriber-shaped (16 columns, 5 indexes)": {
        "ddl": """
          create table public.{t} (
            organization_id uuid not null, id uuid not null, account_id uuid not null, mdn text not null,
            status text not null, plan_id uuid not null, carrier text not null, iccid text not null, imei text,
            external_id text, activated_at timestamptz, suspended_at timestamptz, suspend_reason text,
            notes text, created_at timestamptz not null default now(), updated_at timestamptz not null default now(),
            primary key (organization_id, id));
          create unique index on public.{t} (organization_id, mdn);
          create index on public.{t} (organization_id, account_id);
          create index on public.{t} (organization_id, status);
          create index on public.{t} (organization_id, iccid);""",
        "load": """
          insert into public.{t} (organization_id, id, account_id, mdn, status, plan_id, carrier, iccid, imei, external_id, activated_at)
          select '{org}', md5('line' || g)::uuid, md5('account' || (g / 3))::uuid, '+1312555' || lpad(g::text, 6, '0'),
                 'active', md5('plan' || (g % 5))::uuid, (array['verizon', 'att', 'tmobile'])[1 + g % 3],
                 '8901410' || lpad(g::text, 13, '0'), '35' || lpad(g::text, 13, '0'), 'BQ-' || g,
                 timestamptz '2025-01-01' + g * interval '1 minute'
          from generate_series({first}, {last}) g""",
        "update": "update public.{t} set status = case when status = 'active' then 'suspended' else 'active' end, "
                  "suspended_at = now(), suspend_reason = 'non_payment', updated_at = now()",
    },
    "narrow (6 columns, primary key only)": {
        "ddl": """
          create table public.{t} (
            organization_id uuid not null, id bigint not null, status text not null, plan text not null,
            balance_cents bigint not null, updated_at timestamptz not null default now(),
            primary key (organization_id, id));""",
        "load": """
          insert into public.{t} (organization_id, id, status, plan, balance_cents)
          select '{org}', g, 'active', 'plan-' || (g % 7), g % 10000 from generate_series({first}, {last}) g""",
        "update": "update public.{t} set status = case when status = 'active' then 'suspended' else 'active' end, "
                  "balance_cents = balance_cents + 1",
    },
}


def bench_audit(url, rows, reps):
    results = []
    for shape, spec in AUDIT_SHAPES.items():
        progress(f"audit, {shape}: preparing two {rows:,}-row tables (with and without audit triggers) …")
        for table in ("bench_plain", "bench_audited"):
            psql(url, f"drop table if exists public.{table}; " + spec["ddl"].format(t=table), tuples=False)
            psql(url, spec["load"].format(t=table, org=ORG_A, first=1, last=rows), tuples=False)
        psql(url, "select audit.enable('public.bench_audited', 'customer_care')")
        psql(url, "vacuum analyze public.bench_plain, public.bench_audited", tuples=False)
        statements = {
            "update": spec["update"],
            "insert": spec["load"].format(t="{t}", org=ORG_A, first=rows + 1, last=rows * 2),
            "delete": "delete from public.{t}",
        }
        for label, template in statements.items():
            progress(f"audit, {shape}: bulk {label} of {rows:,} rows")
            plain, audited = [], []
            for table in ("bench_plain", "bench_audited"):  # warm-up
                explain(url, template.format(t=table), "")
            for _ in range(reps):
                plain.append(explain(url, template.format(t="bench_plain"), "")["Execution Time"])
                audited.append(explain(url, template.format(t="bench_audited"), "")["Execution Time"])
                psql(url, "vacuum public.bench_plain, public.bench_audited", tuples=False)
            results.append({
                "table": shape, "change": label, "rows": rows,
                "without_audit_ms": summary(plain), "with_audit_ms": summary(audited),
                "ratio_median": round(statistics.median(audited) / statistics.median(plain), 3),
            })
    entries = psql(url, "select count(*) from audit.entries where table_name = 'public.bench_audited'")
    return results, int(entries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", help="scratch database (default: `wingtel db reset --database wingtel_bench`)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the RLS table (default 1,000,000)")
    parser.add_argument("--audit-rows", type=int, default=100_000, help="rows changed in bulk (default 100,000)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per measurement (default 7)")
    args = parser.parse_args()

    url = args.db_url
    if not url:
        progress("preparing the scratch database wingtel_bench on the local cluster …")
        root = os.path.dirname(HERE)
        out = subprocess.run(["swift", "run", "-c", "debug", "wingtel", "db", "reset", "--database", "wingtel_bench"],
                             cwd=root, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"error: could not prepare the scratch database:\n{out.stderr}")
        url = out.stdout.strip().splitlines()[-1]

    loaded = prepare_rls_table(url, args.rows)
    rls = bench_rls(url, args.reps)
    audit, entries = bench_audit(url, args.audit_rows, args.reps)
    settings = dict(line.split("|", 1) for line in psql(url, """
      select name, setting from pg_settings
      where name in ('server_version', 'shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather',
                     'synchronous_commit', 'fsync', 'effective_cache_size')
      order by name""").splitlines())

    report = {
        "benchmark": "tenancy: B6 row-level security overhead and audit overhead",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
        "inputs": {"rls_rows": loaded, "organizations": 10, "audit_rows": args.audit_rows, "repetitions": args.reps},
        "postgres_settings": settings,
        "rls": rls,
        "audit": audit,
        "audit_entries_written": entries,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "tenancy.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")

    lines = [
        "# Tenancy benchmarks (B6 and audit overhead)",
        "",
        f"Measured {report['measured_at']} on {os.cpu_count()} cores, PostgreSQL {settings.get('server_version')}; "
        f"{loaded:,} rows over 10 organizations; {args.reps} repetitions; times are server execution times (ms).",
        "",
        "## B6: tenant query as `authenticated` vs `service_role` (target ≤ 1.2×)",
        "",
        "| query | authenticated min / median / max | service_role min / median / max | ratio | InitPlans | seq scans |",
        "|---|---|---|---|---|---|",
    ]
    for r in rls:
        a, s = r["authenticated_ms"], r["service_role_ms"]
        lines.append(f"| {r['query']} | {a['min']} / {a['median']} / {a['max']} | {s['min']} / {s['median']} / {s['max']} "
                     f"| {r['ratio_median']} | {r['init_plans']} | {r['sequential_scans']} |")
    lines += ["", "## Audit: bulk change with vs without the audit triggers (target ≤ 2×)", "",
              "| table | change | rows | without audit min / median / max | with audit min / median / max | ratio |",
              "|---|---|---|---|---|---|"]
    for r in audit:
        p, a = r["without_audit_ms"], r["with_audit_ms"]
        lines.append(f"| {r['table']} | {r['change']} | {r['rows']:,} | {p['min']} / {p['median']} / {p['max']} "
                     f"| {a['min']} / {a['median']} / {a['max']} | {r['ratio_median']} |")
    lines += ["", "Plan of the first query as `authenticated`:", "", "```", rls[0]["plan"], "```", ""]
    with open(os.path.join(HERE, "results", "tenancy.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
