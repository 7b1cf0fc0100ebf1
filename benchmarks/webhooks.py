#!/usr/bin/env python3
"""B4: Stripe webhook throughput and latency — verify + record once + apply + 2xx — vs references.

Ours: `wingtel serve` (release build) on loopback, fed by wrk with distinct, correctly signed
`payment_intent.succeeded` events (about 800 bytes each, like Stripe's), spread over the
accounts of one organization. Each request verifies Stripe-Signature (HMAC-SHA256 over the
raw body), then one SQL call records the event once and the payment with its ledger entries
and wallet credit, in one transaction.
References in the same run: the bare route `GET /` of the same server (no database, no
verification), and pgbench running one single-row insert per transaction with the same
number of clients.
Latency at a fixed rate: wrk paced to about 1,000 requests/s (10 connections, 10 ms apart).
Target (BENCHMARKS.md): >= 5,000 req/s and >= 0.4x pgbench; p99 <= 10 ms at 1,000 req/s.
Writes benchmarks/results/webhooks.{json,md}.
"""
import argparse
import hashlib
import hmac
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORG = "10000000-0000-4000-8000-00000000000a"
SECRET = "whsec_benchmark_only"


def psql(url, sql):
    out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: psql failed: {out.stderr.strip()}\n{sql[:300]}")
    return out.stdout.strip()


def progress(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def summary(values):
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3), "runs": len(values)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event_body(index, account, run):
    """A payment_intent.succeeded event shaped like Stripe's (about 800 bytes)."""
    intent = f"pi_bench_{run}_{index:07d}"
    cents = 1000 + (index * 37) % 9000
    return json.dumps({
        "id": f"evt_bench_{run}_{index:07d}", "object": "event", "api_version": "2024-06-20", "created": int(time.time()),
        "type": "payment_intent.succeeded", "livemode": False, "pending_webhooks": 1,
        "request": {"id": f"req_{index:014d}", "idempotency_key": str(uuid.UUID(int=index))},
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": cents, "amount_capturable": 0, "amount_received": cents,
            "capture_method": "automatic", "confirmation_method": "automatic", "created": int(time.time()) - 5, "currency": "usd",
            "customer": f"cus_bench_{index % 997:05d}", "description": "Wireless service", "latest_charge": f"ch_bench_{run}_{index:07d}",
            "payment_method": f"pm_bench_{index % 997:05d}", "payment_method_types": ["card"], "status": "succeeded",
            "metadata": {"wingtel_account_id": account, "wingtel_organization_id": ORG},
        }},
    }, separators=(",", ":"))


def write_events(path, count, accounts, run):
    with open(path, "w") as f:
        for i in range(count):
            body = event_body(i, accounts[i % len(accounts)], run)
            t = int(time.time())
            sig = hmac.new(SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
            f.write(f"t={t},v1={sig}\t{body}\n")
    return os.path.getsize(path) / count


def wrk(args, url, script_args=()):
    out = subprocess.run(["wrk", *args, url, *(["--", *script_args] if script_args else [])], capture_output=True, text=True)
    match = re.search(r"RESULT requests=(\d+) duration_us=(\d+) non2xx=(\d+) errors=(\d+) p50_us=(\d+) p90_us=(\d+) p99_us=(\d+) max_us=(\d+)", out.stdout)
    if not match:
        sys.exit(f"error: wrk printed no result:\n{out.stdout}\n{out.stderr}")
    requests, duration, non2xx, errors, p50, p90, p99, worst = map(int, match.groups())
    return {"requests": requests, "rate": requests / (duration / 1e6), "non2xx": non2xx, "errors": errors,
            "p50_ms": p50 / 1000, "p90_ms": p90 / 1000, "p99_ms": p99 / 1000, "max_ms": worst / 1000}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16, help="database connections of the server")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--events", type=int, default=0, help="events prepared per run (default: enough for 20k req/s)")
    args = parser.parse_args()

    for tool in ("wrk", "pgbench", "psql"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"error: {tool} is not installed (apt-get install wrk postgresql-client)")
    wingtel = os.path.join(ROOT, ".build", "release", "wingtel")
    if not os.path.exists(wingtel):
        progress("building wingtel in release mode (first time: several minutes) …")
        subprocess.run(["swift", "build", "-c", "release", "--product", "wingtel"], cwd=ROOT, check=True)
    progress("preparing the scratch database wingtel_bench …")
    url = subprocess.run([wingtel, "db", "reset", "--database", "wingtel_bench"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    psql(url, f"""
      insert into public.accounts (organization_id, id, name, state, billing_day)
      select '{ORG}', md5('bench-account' || g)::uuid, 'Bench ' || g, 'OR', 1 + g % 28 from generate_series(1, {args.accounts}) g;
      create table public.bench_events (id bigserial primary key, event_id text not null unique, payload jsonb not null);
      analyze;""")
    accounts = psql(url, f"select string_agg(id::text, ',') from public.accounts where name like 'Bench %'").split(",")

    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, PORT=str(port), HOST="127.0.0.1", STRIPE_WEBHOOK_SECRET=SECRET, OUTBOX_WORKERS="0",
               DATABASE_POOL_SIZE=str(args.pool), WINGTEL_LOG_LEVEL="warning")
    log = open(os.path.join(tempfile.gettempdir(), "wingtel-bench-serve.log"), "w")
    server = subprocess.Popen([wingtel, "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    else:
        server.kill()
        sys.exit("error: the server did not start; see " + log.name)

    events_per_run = args.events or 20_000 * args.duration
    tmp = tempfile.mkdtemp(prefix="wingtel-b4-")
    lua = os.path.join(HERE, "wrk", "stripe_events.lua")
    bare_lua = os.path.join(HERE, "wrk", "bare.lua")
    pgbench_script = os.path.join(tmp, "insert.sql")
    with open(pgbench_script, "w") as f:
        f.write("insert into public.bench_events (event_id, payload) values (md5(random()::text || clock_timestamp()::text), '{\"type\":\"payment_intent.succeeded\"}');\n")

    ours, bare, pgb, paced = [], [], [], []
    body_bytes = 0
    try:
        # Warm-up: connections, caches, plans.
        path = os.path.join(tmp, "warm.tsv")
        write_events(path, 5000, accounts, "warm")
        wrk(["-t", str(args.threads), "-c", str(args.connections), "-d", "3s", "-s", lua], base, [path, str(args.threads)])
        for rep in range(args.reps):
            progress(f"repetition {rep + 1}/{args.reps}: preparing {events_per_run:,} signed events …")
            path = os.path.join(tmp, f"events{rep}.tsv")
            body_bytes = write_events(path, events_per_run, accounts, f"r{rep}")
            result = wrk(["-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s", "--latency", "-s", lua], base,
                         [path, str(args.threads)])
            ours.append(result)
            progress(f"  webhook: {result['rate']:,.0f} req/s, p99 {result['p99_ms']:.2f} ms, non-2xx {result['non2xx']}")
            result = wrk(["-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s", "-s", bare_lua], base + "/")
            bare.append(result)
            progress(f"  bare route: {result['rate']:,.0f} req/s")
            out = subprocess.run(["pgbench", "-n", "-c", str(args.connections), "-j", str(args.threads), "-T", str(args.duration), "-f",
                                  pgbench_script, url], capture_output=True, text=True)
            tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
            pgb.append(tps)
            progress(f"  pgbench insert: {tps:,.0f} TPS")
            path = os.path.join(tmp, f"paced{rep}.tsv")
            write_events(path, 1000 * args.duration * 2, accounts, f"p{rep}")
            result = wrk(["-t", "2", "-c", "10", "-d", f"{args.duration}s", "--latency", "-s", lua], base, [path, "2", "10"])
            paced.append(result)
            progress(f"  paced: {result['rate']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)

    sent_2xx = sum(r["requests"] - r["non2xx"] - r["errors"] for r in ours + paced)
    receipts = int(psql(url, "select count(*) from private.webhook_receipts where event_id like 'evt_bench_r%' or event_id like 'evt_bench_p%'"))
    payments = int(psql(url, "select count(*) from public.payments where provider_payment_id like 'pi_bench_r%' or provider_payment_id like 'pi_bench_p%'"))
    settings = dict(line.split("|", 1) for line in psql(url, "select name || '|' || setting from pg_settings where name in ('shared_buffers','synchronous_commit','fsync','max_connections','wal_level')").splitlines())

    rates = [r["rate"] for r in ours]
    result = {
        "benchmark": "B4 Stripe webhook", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
        "inputs": {"duration_s": args.duration, "connections": args.connections, "wrk_threads": args.threads, "server_pool": args.pool,
                   "accounts": args.accounts, "event_bytes_avg": round(body_bytes), "repetitions": args.reps, "log_level": "warning"},
        "postgres_settings": settings,
        "webhook_req_per_s": summary(rates),
        "webhook_p99_ms_at_full_load": summary([r["p99_ms"] for r in ours]),
        "bare_route_req_per_s": summary([r["rate"] for r in bare]),
        "pgbench_insert_tps": summary(pgb),
        "paced_req_per_s": summary([r["rate"] for r in paced]),
        "paced_p50_ms": summary([r["p50_ms"] for r in paced]),
        "paced_p99_ms": summary([r["p99_ms"] for r in paced]),
        "ratio_vs_pgbench": round(statistics.median(rates) / statistics.median(pgb), 3),
        "ratio_vs_bare_route": round(statistics.median(rates) / statistics.median([r["rate"] for r in bare]), 3),
        "non2xx": sum(r["non2xx"] for r in ours + paced), "socket_errors": sum(r["errors"] for r in ours + paced),
        "check": {"answered_2xx": sent_2xx, "receipts": receipts, "payments": payments},
        "targets": {"req_per_s": 5000, "ratio_vs_pgbench": 0.4, "p99_ms_at_1000": 10},
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "webhooks.json"), "w") as f:
        json.dump(result, f, indent=2)
    s = lambda d, fmt="{:,.0f}": f"{fmt.format(d['min'])} / {fmt.format(d['median'])} / {fmt.format(d['max'])}"
    md = f"""# B4 — Stripe webhook (verify + record once + apply + 2xx)

Run {result['date']} on {os.cpu_count()} cores; {args.connections} connections, {args.duration} s per run, {args.reps} repetitions,
server pool {args.pool}, events of about {round(body_bytes)} bytes (`benchmarks/webhooks.py`). min / median / max.

| measure | result | target |
|---|---|---|
| webhook throughput (req/s) | {s(result['webhook_req_per_s'])} | ≥ 5,000 |
| bare route `GET /`, same server (req/s) | {s(result['bare_route_req_per_s'])} | reference |
| pgbench single-row insert, same clients (TPS) | {s(result['pgbench_insert_tps'])} | reference |
| webhook ÷ pgbench (medians) | {result['ratio_vs_pgbench']} | ≥ 0.4 |
| webhook ÷ bare route (medians) | {result['ratio_vs_bare_route']} | reported |
| p99 at full load (ms) | {s(result['webhook_p99_ms_at_full_load'], '{:.2f}')} | |
| paced rate (req/s) | {s(result['paced_req_per_s'])} | about 1,000 |
| p50 when paced (ms) | {s(result['paced_p50_ms'], '{:.2f}')} | |
| p99 when paced (ms) | {s(result['paced_p99_ms'], '{:.2f}')} | ≤ 10 at 1,000 req/s |

Check: {sent_2xx:,} requests answered 2xx; {receipts:,} events recorded and {payments:,} payments made (one each).
Non-2xx: {result['non2xx']}; socket errors: {result['socket_errors']}.
"""
    with open(os.path.join(HERE, "results", "webhooks.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
