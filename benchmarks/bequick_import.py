#!/usr/bin/env python3
"""B7: a BeQuick export validated and migrated vs a raw COPY of the same file.

Ours: `wingtel import bequick` (release build) on a generated subscription export of N rows
(benchmarks/bequick_export.py: accounts of one to four lines, 1% of the rows with a planted
problem) into the seed organization — read and stage the file with COPY, validate every row
(validate_import_data), migrate the rows without blocking issues (migrate_subscriber_data:
accounts, SIMs, devices, lines, plans, events, audit) — one transaction.
Reference: psql's \\copy of the same file into a plain table of 24 text columns.
Target (BENCHMARKS.md): 1M rows in <= 60 s and >= 0.3x the reference (ours <= 3.3x its time).
Writes benchmarks/results/bequick_import.{json,md}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COLUMNS = ("network, subscription_id, first_name, last_name, mdn, device_id, icc_id, user_profile_id, subscription_status, "
           "effective_date, expiration_date, expiration_type, email, plan_name, plan_price, reference, plan_id, sub_created_by, "
           "profile_created_by, acl_group_name, profile_name, owner_acl_group_name, vendor, carrier")


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
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    wingtel = os.path.join(ROOT, ".build", "release", "wingtel")
    if not os.path.exists(wingtel):
        progress("building wingtel in release mode (first time: several minutes) …")
        subprocess.run(["swift", "build", "-c", "release", "--product", "wingtel"], cwd=ROOT, check=True)
    workdir = tempfile.mkdtemp(prefix="wingtel-b7-")
    export = os.path.join(workdir, "bequick.csv")
    progress(f"writing a {args.rows:,}-row export …")
    with open(export, "w") as f:
        subprocess.run([sys.executable, os.path.join(HERE, "bequick_export.py"), "--rows", str(args.rows), "--seed", str(args.seed)],
                       stdout=f, check=True)
    size = os.path.getsize(export)

    raw_times, ours_times, outputs = [], [], []
    for rep in range(args.reps):
        progress(f"repetition {rep + 1}/{args.reps}: fresh database …")
        url = subprocess.run([wingtel, "db", "reset", "--database", "wingtel_bench"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        psql(url, f"create table public.raw_export ({', '.join(c + ' text' for c in COLUMNS.split(', '))})")
        psql(url, "checkpoint")
        started = time.monotonic()
        psql(url, f"\\copy public.raw_export from '{export}' with (format csv, header)")
        raw_times.append(time.monotonic() - started)
        psql(url, "drop table public.raw_export; checkpoint")
        progress(f"  raw COPY {raw_times[-1]:.1f} s; importing …")
        started = time.monotonic()
        out = subprocess.run([wingtel, "import", "bequick", export, "--org", "acme-mobile", "--db-url", url], cwd=ROOT,
                             capture_output=True, text=True)
        ours_times.append(time.monotonic() - started)
        if out.returncode != 0:
            sys.exit(f"error: the import failed:\n{out.stderr}")
        outputs.append(out.stdout)
        progress(f"  import {ours_times[-1]:.1f} s")

    counts = psql(url, "select entity || ': ' || created || ' created, ' || coalesce(skipped, 0) || ' skipped' from ("
                       "select 'subscribers' as entity, count(*) as created, (select count(*) from import_rows where outcome in ('skipped', 'rejected')) as skipped "
                       "from subscribers where external_id like 'SUB-%') x")
    settings = psql(url, "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings where name in "
                         "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_wal_size', 'synchronous_commit', 'wal_level')")
    raw, ours = summary(raw_times), summary(ours_times)
    result = {
        "benchmark": "B7 BeQuick import",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": {"rows": args.rows, "seed": args.seed, "file_bytes": size, "generator": "benchmarks/bequick_export.py",
                   "organization": "acme-mobile (seed catalog)"},
        "postgres_settings": settings,
        "reference_raw_copy_s": raw,
        "ours_import_s": ours,
        "ours_rows_per_s": round(args.rows / ours["median"]),
        "ratio_reference_over_ours": round(raw["median"] / ours["median"], 3),
        "targets": {"ours_s_max": 60, "ratio_min": 0.3},
        "final_state": counts,
        "last_output": outputs[-1],
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "bequick_import.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    with open(os.path.join(HERE, "results", "bequick_import.md"), "w") as f:
        f.write(f"# B7 — BeQuick import ({args.rows:,} rows, {size / 1e6:.0f} MB, {args.reps} repetitions, {result['date']})\n\n")
        f.write("| measure | min | median | max |\n|---|---|---|---|\n")
        f.write(f"| raw `\\copy` of the file (reference) | {raw['min']:.1f} s | {raw['median']:.1f} s | {raw['max']:.1f} s |\n")
        f.write(f"| `wingtel import bequick` (stage, validate, migrate) | {ours['min']:.1f} s | {ours['median']:.1f} s | {ours['max']:.1f} s |\n\n")
        f.write(f"Ours: {result['ours_rows_per_s']:,} rows/s; ratio reference/ours {result['ratio_reference_over_ours']} "
                f"(target >= 0.3); target time <= 60 s.\n\nFinal state: {counts}.\n\nPostgreSQL: {settings}.\n\n"
                f"Last run's output:\n\n```\n{outputs[-1]}```\n")
    print(json.dumps({k: result[k] for k in ("reference_raw_copy_s", "ours_import_s", "ratio_reference_over_ours")}, indent=2))


if __name__ == "__main__":
    main()
