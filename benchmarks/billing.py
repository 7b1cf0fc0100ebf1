#!/usr/bin/env python3
"""B2 and B3: rating and the bill run, at 100k subscribers with 10M usage records (and 1M subscribers for growth).

Data (deterministic, built in SQL): one organization with four plans (one pooled), two add-ons,
sales tax in ten states, county tax in three, federal USF and per-line 911 fees; N lines on
N/1.6 accounts (billing days 1-28); subscriptions since August 2026, 5% of lines upgraded or
downgraded mid-October (prorations), 2% cancelled in October (credits), 10% with a monthly
add-on, 5% with a one-off pack; usage: --usage-records raw records in usage_records spread
over the October cycles (100 per line by default) with their usage_daily rollups (what
ingestion maintains; their triggers sum them into usage_cycles), or, with --usage-records 0,
48 days of rollups per line generated directly with triggers off and summed into
usage_cycles afterwards (rebuild_usage_cycles). Rating reads usage_cycles.

B3: run_bill_cycle for November 2026 after October was billed, so every step runs: recurring
charges in advance, October prorations, October usage rated in arrears, September re-rated,
discounts, taxes, numbering, invoices, lines and ledger. Each repetition runs inside a
transaction that is rolled back, so every repetition bills the same data.
B2: private.rate_cycles for the October cycles (the rating the bill run invoices), in records/s.
Writes benchmarks/results/billing_<N>.{json,md}.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORG = "be000000-0000-4000-8000-0000000000be"


def psql(url, sql, timing=False):
    args = ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    out = subprocess.run(args, input=("\\timing on\n" if timing else "") + sql, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: psql failed: {out.stderr.strip()}\n{sql[:400]}")
    return out.stdout.strip()


def timed(url, sql):
    """Runs sql (one statement inside begin/rollback) and returns psql's own timing of it, in seconds."""
    out = psql(url, f"begin;\n{sql};\nrollback;", timing=True)
    times = [float(m) for m in re.findall(r"Time: ([0-9.]+) ms", out)]
    # begin, the statement, rollback: the statement is the longest.
    return max(times) / 1000.0, out


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def summary(values):
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3), "runs": len(values)}


def build(url, lines, usage_records):
    accounts = max(1, int(lines / 1.6))
    progress(f"catalog, {accounts:,} accounts and {lines:,} lines …")
    psql(url, f"""
      set wingtel.actor = 'benchmarks/billing.py';
      -- A bulk load (docs/DOMAIN.md): the generated lines are unique by construction, the unique
      -- indexes still refuse a duplicate; without it the per-row look-ups are quadratic.
      set wingtel.bulk_load = on;
      insert into public.organizations (id, slug, name, time_zone) values ('{ORG}', 'bench-mvno', 'Bench MVNO', 'America/New_York');
      insert into public.billing_policies (organization_id) values ('{ORG}');
      insert into public.carriers (organization_id, id, code, name, adapter) values ('{ORG}', '{ORG[:-2]}c1', 'verizon', 'Verizon', 'thingspace');
      insert into public.carrier_rate_plans (organization_id, id, carrier_id, code, name, monthly_cost_cents, included_data_mb)
      values ('{ORG}', '{ORG[:-2]}e1', '{ORG[:-2]}c1', 'VZW-POOL', 'Verizon pooled', 900, 5120);
      insert into public.plans (organization_id, id, code, name, price_cents, data_mb, voice_minutes, sms, overage_data_cents_per_gb,
                                overage_voice_cents_per_minute, overage_sms_cents, carrier_rate_plan_id, pooled_data)
      values ('{ORG}', '{ORG[:-2]}f1', 'TALK', 'Talk & Text 1 GB', 1500, 1024, 500, 1000, 1000, 5, 2, '{ORG[:-2]}e1', false),
             ('{ORG}', '{ORG[:-2]}f2', 'DATA5', '5 GB', 2500, 5120, null, null, 1000, 0, 0, '{ORG[:-2]}e1', false),
             ('{ORG}', '{ORG[:-2]}f3', 'UNL', 'Unlimited', 4500, null, null, null, 0, 0, 0, '{ORG[:-2]}e1', false),
             ('{ORG}', '{ORG[:-2]}f4', 'SHARE', 'Share 2 GB', 2000, 2048, null, null, 1000, 0, 0, '{ORG[:-2]}e1', true);
      insert into public.add_ons (organization_id, id, code, name, kind, recurrence, price_cents, data_mb)
      values ('{ORG}', '{ORG[:-2]}a1', 'PACK2', '2 GB pack', 'data_pack', 'one_off', 1000, 2048),
             ('{ORG}', '{ORG[:-2]}a2', 'INTL', 'International', 'international', 'monthly', 500, null);
      insert into public.tax_rates (organization_id, code, name, kind, state, county, percent, per_line_cents)
      select '{ORG}'::uuid, 'SALES-' || s, s || ' sales tax', 'sales_tax'::public.tax_kind, s, null::text, 4 + (ordinality % 4) * 0.75, null::bigint
      from unnest(array['IL','NY','CA','TX','FL','WA','GA','OH','PA','AZ']) with ordinality s
      union all select '{ORG}'::uuid, 'E911-' || s, s || ' 911 fee', 'e911'::public.tax_kind, s, null, null, 75 + (ordinality % 5) * 25
      from unnest(array['IL','NY','CA','TX','FL','WA','GA','OH','PA','AZ']) with ordinality s
      union all select '{ORG}'::uuid, 'COUNTY-' || c, c || ' county tax', 'sales_tax'::public.tax_kind, st, c, 1.75, null
      from (values ('Cook', 'IL'), ('Kings', 'NY'), ('Los Angeles', 'CA')) as x (c, st)
      union all select '{ORG}'::uuid, 'USF', 'Federal USF', 'usf'::public.tax_kind, null, null, 13.6, null;

      insert into public.accounts (organization_id, id, name, state, county, billing_day)
      select '{ORG}'::uuid, md5('bench-account' || g)::uuid, 'Account ' || g,
             (array['IL','NY','CA','TX','FL','WA','GA','OH','PA','AZ','OR'])[1 + g % 11],
             case g % 11 when 0 then 'Cook' when 1 then 'Kings' when 2 then 'Los Angeles' end, 1 + g % 28
      from generate_series(1, {accounts}) g;
      insert into public.subscribers (organization_id, id, account_id, mdn, carrier_id, status, network_status)
      select '{ORG}'::uuid, md5('bench-line' || g)::uuid, md5('bench-account' || (1 + (g - 1) % {accounts}))::uuid,
             '+1202' || (200 + 2 * (g / 10000))::text || lpad((g % 10000)::text, 4, '0'), '{ORG[:-2]}c1', 'active', 'active'
      from generate_series(1, {lines}) g;
    """)
    progress("subscriptions (5% changed, 2% cancelled in October), add-ons …")
    psql(url, f"""
      set wingtel.actor = 'benchmarks/billing.py';
      set wingtel.bulk_load = on;
      create temporary table plan_of as
      select g, md5('bench-line' || g)::uuid as line,
             ('{ORG[:-2]}f' || case when g % 10 < 3 then 1 when g % 10 < 6 then 2 when g % 10 < 8 then 3 else 4 end)::uuid as plan,
             ('{ORG[:-2]}f' || case when g % 10 < 3 then 2 when g % 10 < 6 then 3 when g % 10 < 8 then 2 else 3 end)::uuid as other
      from generate_series(1, {lines}) g;
      insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
      select '{ORG}'::uuid, p.line, p.plan,
             tstzrange('2026-08-01 00:00-04', case when p.g % 20 = 7 then timestamptz '2026-10-15 00:00-04'
                                                   when p.g % 50 = 3 then timestamptz '2026-10-20 00:00-04' end, '[)')
      from plan_of p
      union all
      select '{ORG}'::uuid, p.line, p.other, tstzrange('2026-10-15 00:00-04', null, '[)') from plan_of p where p.g % 20 = 7;
      insert into public.subscriber_add_ons (organization_id, subscriber_id, add_on_id, effective)
      select '{ORG}'::uuid, md5('bench-line' || g)::uuid, '{ORG[:-2]}a2'::uuid, tstzrange('2026-08-01', null, '[)')
      from generate_series(1, {lines}) g where g % 10 = 4
      union all
      select '{ORG}'::uuid, md5('bench-line' || g)::uuid, '{ORG[:-2]}a1'::uuid, tstzrange('2026-10-12', '2026-11-11', '[)')
      from generate_series(1, {lines}) g where g % 20 = 9;
    """)
    if usage_records > 0:
        progress(f"{usage_records:,} usage records over the October cycles and their daily rollups …")
        psql(url, f"""
          select private.ensure_usage_partition(m) from (values (timestamptz '2026-10-02'), (timestamptz '2026-11-02')) v (m);
          insert into public.usage_batches (organization_id, id, source, rows_total, rows_inserted)
          values ('{ORG}', '{ORG[:-2]}b1', 'bench', {usage_records}, {usage_records});
          insert into public.usage_records (organization_id, source, source_record_id, recorded_at, subscriber_id, kind, quantity, batch_id)
          select '{ORG}'::uuid, 'bench', 'r' || g, timestamptz '2026-10-01 04:00+00' + ((g::bigint * 7919) % (57 * 86400)) * interval '1 second',
                 md5('bench-line' || (1 + g % {lines}))::uuid,
                 (array['data','data','data','voice','sms'])[1 + g % 5]::public.usage_kind,
                 case g % 5 when 3 then 30 + (g * 31) % 600 when 4 then 1 else (hashint4(g)::bigint & 2147483647) / 40 end,
                 '{ORG[:-2]}b1'
          from generate_series(1, {usage_records}) g;
          insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
          select '{ORG}'::uuid, subscriber_id, (recorded_at at time zone 'America/New_York')::date,
                 coalesce(sum(quantity) filter (where kind = 'data'), 0), coalesce(sum(quantity) filter (where kind = 'voice'), 0),
                 coalesce(sum(quantity) filter (where kind = 'sms'), 0)
          from public.usage_records where organization_id = '{ORG}' group by 2, 3;
        """)
    else:
        progress("48 days of daily usage rollups per line (as many as 100 records per line give) …")
        psql(url, f"""
          -- The rollups name the lines just made; skip the per-row foreign-key probes (48M of them).
          set session_replication_role = replica;
          insert into public.usage_daily (organization_id, subscriber_id, day, data_bytes, voice_seconds, sms_count)
          select '{ORG}'::uuid, md5('bench-line' || g)::uuid, date '2026-10-01' + d,
                 (hashint4(g * 31 + d)::bigint & 2147483647) / 40, (g * d) % 900, (g + d) % 7
          from generate_series(1, {lines}) g cross join generate_series(0, 47) d;
          -- With triggers off, the cycle sums are made the way such loaders make them.
          set session_replication_role = origin;
          select private.rebuild_usage_cycles('{ORG}');
        """)
    psql(url, "analyze;")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--usage-records", type=int, default=None, help="raw usage records (default 100 per line; 0: rollups only)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--database", default=None, help="scratch database name (default wingtel_bench_<lines>)")
    parser.add_argument("--reuse", action="store_true", help="keep the scratch database when it already holds the data (skips the setup)")
    parser.add_argument("--setup-only", action="store_true", help="build the scratch database (and bill October), measure nothing")
    args = parser.parse_args()
    usage_records = args.lines * 100 if args.usage_records is None else args.usage_records
    database = args.database or f"wingtel_bench_{args.lines}"

    wingtel = next((p for p in (os.path.join(ROOT, ".build", c, "wingtel") for c in ("release", "debug")) if os.path.exists(p)), None)
    if wingtel is None:
        progress("building wingtel (first time: several minutes) …")
        subprocess.run(["swift", "build", "--product", "wingtel"], cwd=ROOT, check=True)
        wingtel = os.path.join(ROOT, ".build", "debug", "wingtel")
    base_url = subprocess.run([wingtel, "db", "url"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    url = base_url.rsplit("/", 1)[0] + "/" + database
    reuse = args.reuse and subprocess.run(["psql", url, "-X", "-At", "-c", f"select 1 from public.bill_runs where organization_id = '{ORG}' and billing_month = '2026-10-01'"],
                                          capture_output=True, text=True).stdout.strip() == "1"
    setup_seconds = october_seconds = 0.0
    october = psql(url, f"select count(*) from public.invoices where organization_id = '{ORG}' and billing_month = '2026-10-01'") if reuse else "0"
    if not reuse:
        progress(f"preparing the scratch database {database} …")
        url = subprocess.run([wingtel, "db", "reset", "--database", database], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        started = time.time()
        build(url, args.lines, usage_records)
        setup_seconds = time.time() - started
        progress("billing October (so that November has prorations and re-rating to do) …")
        october_start = time.time()
        october = psql(url, f"select invoices_created from public.run_bill_cycle('{ORG}', '2026-10-01', '2026-10-29 12:00-04')")
        october_seconds = time.time() - october_start
        psql(url, "analyze;")
    else:
        progress(f"reusing {database} (setup and October run not repeated)")
    if args.setup_only:
        progress(f"{database} is ready (setup {setup_seconds:.0f} s, October run {october_seconds:.0f} s); measure with --reuse")
        return

    counts = psql(url, f"""
      select (select count(*) from public.subscribers where organization_id = '{ORG}') || ',' ||
             (select count(*) from public.accounts where organization_id = '{ORG}') || ',' ||
             (select count(*) from public.usage_records where organization_id = '{ORG}') || ',' ||
             (select count(*) from public.usage_daily where organization_id = '{ORG}')""").split(",")

    rating, bill = [], []
    result_line = ""
    for rep in range(args.reps):
        # A repetition is rolled back: its rows stay behind as dead tuples and index entries until
        # a vacuum, which autovacuum would have run between two monthly bill runs.
        psql(url, "vacuum public.invoices, public.invoice_lines, public.ledger_entries, public.bill_runs, audit.entries, public.billing_policies;")
        seconds, _ = timed(url, f"select count(*) from private.rate_cycles('{ORG}', '2026-10-01')")
        rating.append(seconds)
        seconds, out = timed(url, f"select invoices_created || ',' || total_cents || ',' || tax_cents from public.run_bill_cycle('{ORG}', '2026-11-01', '2026-11-29 12:00-05')")
        bill.append(seconds)
        result_line = next(line for line in out.splitlines() if "," in line and not line.startswith("Time"))
        progress(f"rep {rep + 1}/{args.reps}: rating {rating[-1]:.2f} s, bill run {bill[-1]:.2f} s ({result_line})")

    # What one November run writes: run it once more and count, in a transaction rolled back
    # (so the scratch database stays reusable).
    written = psql(url, f"""
      begin;
      select count(*) from public.run_bill_cycle('{ORG}', '2026-11-01', '2026-11-29 12:00-05');
      select (select count(*) from public.invoice_lines l join public.invoices i on i.id = l.invoice_id where i.organization_id = '{ORG}' and i.billing_month = '2026-11-01')
        || ',' || (select count(*) from public.ledger_entries e join public.invoices i on i.id = e.invoice_id where i.organization_id = '{ORG}' and i.billing_month = '2026-11-01' and e.source = 'invoice')
        || ',' || (select count(*) from public.invoice_lines l join public.invoices i on i.id = l.invoice_id where i.organization_id = '{ORG}' and i.billing_month = '2026-11-01' and l.kind = 'proration')
        || ',' || (select count(*) from public.invoice_lines l join public.invoices i on i.id = l.invoice_id where i.organization_id = '{ORG}' and i.billing_month = '2026-11-01' and l.kind = 'usage')
        || ',' || (select count(*) from public.invoice_lines l join public.invoices i on i.id = l.invoice_id where i.organization_id = '{ORG}' and i.billing_month = '2026-11-01' and l.kind = 'tax');
      rollback;""").splitlines()[-1].split(",")
    invoices, total, tax = result_line.split(",")
    # The records the rating covers: those inside each account's October cycle.
    usage_in_cycles = int(psql(url, f"""
      select count(*) from public.usage_records r
      join public.subscribers l on l.organization_id = r.organization_id and l.id = r.subscriber_id
      join public.accounts a on a.organization_id = l.organization_id and a.id = l.account_id
      where r.organization_id = '{ORG}'
        and r.recorded_at >= (date '2026-10-01' + a.billing_day - 1)::timestamp at time zone 'America/New_York'
        and r.recorded_at < ((date '2026-10-01' + a.billing_day - 1) + interval '1 month')::timestamp at time zone 'America/New_York'"""))
    result = {
        "benchmark": "B2/B3 rating and bill run",
        "lines": int(counts[0]), "accounts": int(counts[1]), "usage_records": int(counts[2]), "usage_daily_rows": int(counts[3]),
        "setup_seconds": None if reuse else round(setup_seconds, 1), "october_run_seconds": None if reuse else round(october_seconds, 2),
        "october_invoices": int(october), "reused_database": reuse,
        "bill_run_seconds": summary(bill), "rating_seconds": summary(rating),
        "invoices": int(invoices), "total_cents": int(total), "tax_cents": int(tax),
        "invoice_lines": int(written[0]), "ledger_entries": int(written[1]), "proration_lines": int(written[2]),
        "usage_lines": int(written[3]), "tax_lines": int(written[4]),
        "accounts_per_second": round(int(invoices) / statistics.median(bill)),
        "usage_records_in_rated_cycles": usage_in_cycles,
        "rating_records_per_second": round(usage_in_cycles / statistics.median(rating)) if usage_in_cycles else None,
        "rating_rollup_rows_per_second": round(int(counts[3]) / statistics.median(rating)),
        "machine": f"{os.cpu_count()} cores",
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    base = os.path.join(HERE, "results", f"billing_{args.lines}")
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    b = result["bill_run_seconds"]
    r = result["rating_seconds"]
    with open(base + ".md", "w") as f:
        f.write(f"""# B2/B3 — rating and the bill run, {result['lines']:,} lines

Generated by `benchmarks/billing.py --lines {args.lines} --usage-records {usage_records} --reps {args.reps}` on {result['machine']}.
Data: {result['accounts']:,} accounts, {result['lines']:,} lines, {result['usage_records']:,} usage records, {result['usage_daily_rows']:,} daily rollup rows.
{f"Setup {result['setup_seconds']} s; October bill run (no prorations yet) {result['october_run_seconds']} s" if not reuse else "Setup and the October bill run (no prorations yet) not repeated (--reuse)"}; {result['october_invoices']:,} October invoices.

| measure | min | median | max |
|---|---|---|---|
| B3 bill run, November (s) | {b['min']} | {b['median']} | {b['max']} |
| B2 rating of the October cycles (s) | {r['min']} | {r['median']} | {r['max']} |

November run: {result['invoices']:,} invoices, {result['invoice_lines']:,} lines ({result['proration_lines']:,} prorations, {result['usage_lines']:,} usage, {result['tax_lines']:,} taxes and fees), {result['ledger_entries']:,} ledger entries; total {result['total_cents'] / 100:,.2f} incl. tax {result['tax_cents'] / 100:,.2f}.
{result['accounts_per_second']:,} accounts/s. Rating: {result['usage_records_in_rated_cycles']:,} usage records in the rated cycles, {format(result['rating_records_per_second'], ',') if result['rating_records_per_second'] else 'n/a'} records/s ({result['rating_rollup_rows_per_second']:,} daily rollup rows/s covered; rating reads their per-cycle sums in usage_cycles).
""")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
