#!/usr/bin/env bash
# Broker benchmark: `samsa perf produce|consume --bootstrap` against `samsa broker` (release), beside the
# embedded path and NATS JetStream (file store) in the same run. 100 B records, one partition, loopback.
# Produce waits for acks=-1 (the broker's default flush policy every-append: fdatasync before the ack);
# consume reads everything from the beginning. Then produce latency at half the median maximum rate.
#   Benchmarks/broker/run.sh [RUNS] [RECORDS]       (from the repository root; prints medians at the end)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
records=${2:-2000000}
source scripts/setup.sh
require_swift
require_debian_packages nats-server
swift build -c release --product samsa 2>&1 | grep -E "error|warning:|Compiling|Build" | tail -3
samsa=.build/release/samsa
work=$(mktemp -d /tmp/samsa-broker-bench.XXXXXX)
results=${SAMSA_BENCH_RESULTS:-/tmp/samsa-broker-bench-results.jsonl}
: >"$results"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# One JSON line per measurement, tagged with the system it measured.
tag() { python3 -c 'import json,sys; system=sys.argv[1]
for line in sys.stdin:
    line=line.strip()
    if line.startswith("{"): d=json.loads(line); d["system"]=system; print(json.dumps(d))' "$1" >>"$results"; }

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

start_broker() {  # $1: data directory; sets broker_pid and broker_port
    "$samsa" broker --dir "$1" --listen 127.0.0.1:0 >"$work/broker.out" 2>"$work/broker.err" &
    broker_pid=$!
    pids+=("$broker_pid")
    for _ in $(seq 100); do grep -q "listening on" "$work/broker.out" 2>/dev/null && break; sleep 0.1; done
    broker_port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/broker.out")
}

stop_broker() { kill "$broker_pid"; wait "$broker_pid" || true; }

python=.build-bench-python/bin/python
if ! "$python" -c "import nats" 2>/dev/null; then
    python3 -m venv .build-bench-python && "$python" -m pip install -q nats-py==2.16.0
fi

for run in $(seq "$runs"); do
    echo "run $run of $runs" >&2
    "$samsa" perf produce --dir "$work/embedded-$run" --records "$records" --record-size 100 --flush every-append --json 2>/dev/null | tag embedded
    "$samsa" perf consume --dir "$work/embedded-$run" --json 2>/dev/null | tag embedded
    rm -rf "$work/embedded-$run" || true

    start_broker "$work/broker-$run"
    "$samsa" perf produce --bootstrap "127.0.0.1:$broker_port" --records "$records" --record-size 100 --acks -1 --json 2>/dev/null | tag broker
    "$samsa" perf consume --bootstrap "127.0.0.1:$broker_port" --json 2>/dev/null | tag broker
    stop_broker
    rm -rf "$work/broker-$run" || true

    if command -v nats-server >/dev/null; then
        port=$(free_port)
        nats-server -js -sd "$work/nats-$run" -p "$port" -a 127.0.0.1 -l "$work/nats.log" &
        nats_pid=$!
        pids+=("$nats_pid")
        sleep 1
        "$python" Benchmarks/broker/nats_bench.py --port "$port" --records "$records" | tag nats-jetstream
        kill "$nats_pid"; wait "$nats_pid" || true
        rm -rf "$work/nats-$run"
    fi
done

# Produce latency at half the median maximum broker produce rate.
half=$(python3 -c 'import json,statistics,sys
rates=[json.loads(l)["records_per_sec"] for l in open(sys.argv[1]) if "\"broker\"" in l and "\"produce\"" in l]
print(int(statistics.median(rates)/2))' "$results")
for run in $(seq "$runs"); do
    start_broker "$work/latency-$run"
    "$samsa" perf produce --bootstrap "127.0.0.1:$broker_port" --records $((half * 5)) --record-size 100 --acks -1 --throughput "$half" --json 2>/dev/null \
        | tag "broker-at-$half-per-sec"
    stop_broker
    rm -rf "$work/latency-$run" || true
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
groups = {}
for row in rows:
    groups.setdefault((row["system"], row["command"]), []).append(row)
print(f"{'system':<28} {'command':<8} {'runs':>4} {'records/s (median)':>20} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
for (system, command), items in sorted(groups.items()):
    rate = statistics.median(r["records_per_sec"] for r in items)
    mb = statistics.median(r["mb_per_sec"] for r in items)
    p50 = statistics.median(r["latency_ms"]["p50"] for r in items) if "latency_ms" in items[0] else float("nan")
    p99 = statistics.median(r["latency_ms"]["p99"] for r in items) if "latency_ms" in items[0] else float("nan")
    print(f"{system:<28} {command:<8} {len(items):>4} {rate:>20,.0f} {mb:>8.1f} {p50:>8.2f} {p99:>8.2f}")
PY
