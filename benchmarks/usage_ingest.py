#!/usr/bin/env python3
"""B1: usage (CDR) ingest into the real usage table vs a plain COPY of the same rows.

Ours: `wingtel usage ingest` (release build) on a CSV of N records — parse and check in Swift,
COPY into a staging table, then ingest_usage: resolve each MDN to its line, insert into the
partitioned, keyed usage_records (re-deliveries ignored), quarantine unknown numbers (1% of the
file) — one transaction, committed: B1's figure is the time from the command's start to that
commit (the command prints it). The command then adds the records to the daily rollups in a
second transaction; the whole command's time is reported beside it.
Reference: psql's \\copy of the same records, already resolved, into a logged table partitioned
the same way with the same primary key and no other work.
Target (BENCHMARKS.md): >= 150,000 rows/s and >= 0.5x the reference.
Writes benchmarks/results/usage_ingest.{json,md}.
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORG = "10000000-0000-4000-8000-00000000000a"


def psql(url, sql):
    out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: psql failed: {out.stderr.strip()}\n{sql[:300]}")
    return out.stdout.strip()


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def summary(values):
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3), "runs": len(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000, help="subscriber lines the records spread over")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    wingtel = os.path.join(ROOT, ".build", "release", "wingtel")
    if not os.path.exists(wingtel):
        progress("building wingtel in release mode (first time: several minutes) …")
        subprocess.run(["swift", "build", "-c", "release", "--product", "wingtel"], cwd=ROOT, check=True)
    progress("preparing the scratch database wingtel_bench …")
    url = subprocess.run([wingtel, "db", "reset", "--database", "wingtel_bench"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]

    progress(f"creating {args.lines:,} lines …")
    psql(url, f"""
      insert into public.subscribers (organization_id, id, account_id, mdn, carrier_id, status, network_status)
      select '{ORG}', md5('bench-line' || g)::uuid, 'ac100000-0000-4000-8000-00000000000a',
             '+1312' || (3200000 + g)::text, 'ca200000-0000-4000-8000-00000000000a', 'active', 'active'
      from generate_series(1, {args.lines}) g;
      analyze public.subscribers;""")

    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="wingtel-b1-")
    raw = os.path.join(workdir, "usage.csv")
    resolved = os.path.join(workdir, "resolved.tsv")
    progress(f"writing {args.rows:,} records …")
    start = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
    with open(raw, "w") as f_raw, open(resolved, "w") as f_res:
        f_raw.write("mdn,recorded_at,kind,quantity,record_id\n")
        for i in range(args.rows):
            unknown = rng.random() < 0.01
            line = rng.randint(1, args.lines)
            mdn = f"312{(3200000 + line) if not unknown else 9990000 + (i % 9999)}"
            at = datetime.fromtimestamp(start + rng.randint(0, 30 * 86400 - 1), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            kind = rng.choices(["data", "voice", "sms"], [0.6, 0.25, 0.15])[0]
            quantity = {"data": int(rng.lognormvariate(14, 2)), "voice": rng.randint(1, 1800), "sms": 1}[kind]
            record = f"r{i:09d}"
            f_raw.write(f"{mdn},{at},{kind},{quantity},{record}\n")
            if not unknown:
                sub = psql_uuid_md5(f"bench-line{line}")
                f_res.write(f"{ORG}\tbench\t{record}\t{at}\t{sub}\t{kind}\t{quantity}\t00000000-0000-4000-8000-000000000000\n")

    psql(url, """
      drop table if exists public.bench_copy;
      create table public.bench_copy (organization_id uuid not null, source text not null, source_record_id text not null,
        recorded_at timestamptz not null, subscriber_id uuid not null, kind public.usage_kind not null, quantity bigint not null,
        batch_id uuid not null, primary key (organization_id, source, source_record_id, recorded_at)) partition by range (recorded_at);
      create table partitions.bench_copy_2026_03 partition of public.bench_copy for values from ('2026-03-01') to ('2026-04-01');
      select private.ensure_usage_partition('2026-03-01');""")

    ours, whole, rollups, reference, results = [], [], [], [], None
    for rep in range(args.reps):
        psql(url, "truncate public.usage_records, public.usage_daily, public.usage_quarantine, public.bench_copy")
        t0 = time.perf_counter()
        out = subprocess.run([wingtel, "usage", "ingest", raw, "--org", "acme-mobile", "--source", "bench", "--db-url", url],
                             capture_output=True, text=True)
        t1 = time.perf_counter()
        if out.returncode != 0:
            sys.exit(f"error: ingest failed: {out.stderr}")
        results = out.stdout.strip()
        committed = re.search(r"records committed after ([0-9.]+) s .*daily rollups ([0-9.]+) s", results)
        if not committed:
            sys.exit(f"error: no 'records committed after' line in the output:\n{results}")
        rollups.append(float(committed.group(2)))
        ours.append(args.rows / ((t1 - t0) - rollups[-1]))  # wall time less the rollups' transaction
        whole.append(args.rows / (t1 - t0))
        t0 = time.perf_counter()
        subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", f"\\copy public.bench_copy from '{resolved}'"], check=True)
        t1 = time.perf_counter()
        reference.append(args.rows / (t1 - t0))
        progress(f"rep {rep + 1}/{args.reps}: ours {ours[-1]:,.0f} rows/s to the records' commit ({whole[-1]:,.0f} with the rollups), plain COPY {reference[-1]:,.0f} rows/s")

    stored = int(psql(url, "select count(*) from public.usage_records"))
    quarantined = int(psql(url, "select count(*) from public.usage_quarantine"))
    settings = dict(line.split("|", 1) for line in psql(url, """select name, setting from pg_settings where name in
      ('server_version', 'shared_buffers', 'work_mem', 'max_wal_size', 'synchronous_commit', 'fsync', 'jit') order by name""").splitlines())
    report = {
        "benchmark": "B1 usage ingest", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
        "inputs": {"rows": args.rows, "lines": args.lines, "unknown_mdn_share": 0.01, "repetitions": args.reps, "seed": args.seed,
                   "month_partitions": 1, "file_bytes": os.path.getsize(raw)},
        "postgres_settings": settings,
        "ours_rows_per_s": summary(ours), "ours_with_rollups_rows_per_s": summary(whole), "rollup_seconds": summary(rollups),
        "plain_copy_rows_per_s": summary(reference),
        "ratio_median": round(statistics.median(ours) / statistics.median(reference), 3),
        "last_run": results, "stored": stored, "quarantined": quarantined,
        "note": "ours = the command's wall time (process start, file read and hash, COPY, ingest_usage, commit) less the daily rollups' transaction, which the command times and prints; ours_with_rollups = wall time of the whole command, the daily rollups' transaction included; reference = psql \\copy wall time",
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "usage_ingest.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    o, w, r = report["ours_rows_per_s"], report["ours_with_rollups_rows_per_s"], report["plain_copy_rows_per_s"]
    md = f"""# B1: usage ingest

Measured {report['measured_at']} on {os.cpu_count()} cores, PostgreSQL {settings.get('server_version')}: {args.rows:,} records over
{args.lines:,} lines (1% unknown numbers), {args.reps} repetitions, seed {args.seed}.

| path | rows/s min / median / max |
|---|---|
| `wingtel usage ingest` to the records' commit (parse, COPY, resolve, dedupe, quarantine; one transaction) | {o['min']:,.0f} / {o['median']:,.0f} / {o['max']:,.0f} |
| the whole command, with the daily rollups' transaction after it | {w['min']:,.0f} / {w['median']:,.0f} / {w['max']:,.0f} |
| plain `\\copy` of the resolved rows into a partitioned table with the same key | {r['min']:,.0f} / {r['median']:,.0f} / {r['max']:,.0f} |

Ratio of medians: **{report['ratio_median']}** (target ≥ 0.5; absolute target ≥ 150,000 rows/s). Daily rollups after the commit: {report['rollup_seconds']['median']} s (median).
Last run: {results}
"""
    with open(os.path.join(HERE, "results", "usage_ingest.md"), "w") as f:
        f.write(md)
    print(md)


def psql_uuid_md5(text):
    import hashlib
    h = hashlib.md5(text.encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


if __name__ == "__main__":
    main()
