#!/usr/bin/env bash
# Broker benchmark: `samsa perf produce|consume --bootstrap` against `samsa broker` (release), beside the
# embedded path and NATS JetStream (file store) in the same run. 100 B records, one partition, loopback.
# Produce waits for acks=-1 (the broker's default flush policy every-append: fdatasync before the ack);
# consume reads everything from the beginning, with zero-copy fetch (sendfile) and with the copying path,
# interleaved in each run (a broker restarted on the same data with --zero-copy-fetch true|false), by
# `samsa perf consume` and by kcat (librdkafka), with the broker's CPU seconds from /proc/PID/stat.
# Then produce latency at half the median maximum rate.
#   Benchmarks/broker/run.sh [RUNS] [RECORDS]       (from the repository root; prints medians at the end)
#   SAMSA_BENCH_ONLY=fetch Benchmarks/broker/run.sh  only the broker's produce and the consume comparison
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

start_broker() {  # $1: data directory, then more broker options; sets broker_pid and broker_port
    local dir=$1
    shift
    : >"$work/broker.out"
    "$samsa" broker --dir "$dir" --listen 127.0.0.1:0 "$@" >"$work/broker.out" 2>"$work/broker.err" &
    broker_pid=$!
    pids+=("$broker_pid")
    for _ in $(seq 100); do grep -q "listening on" "$work/broker.out" 2>/dev/null && break; sleep 0.1; done
    broker_port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/broker.out")
}

stop_broker() { kill "$broker_pid"; wait "$broker_pid" || true; }

# User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks).
cpu_seconds() { python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split()
print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$1"; }

# Adds the broker's CPU seconds between two readings to each JSON line.
with_cpu() { python3 -c 'import json,sys
for line in sys.stdin:
    line=line.strip()
    if line.startswith("{"): d=json.loads(line); d["broker_cpu_s"]=round(float(sys.argv[2])-float(sys.argv[1]),2); print(json.dumps(d))' "$1" "$2"; }

# Consume everything from the beginning with `samsa perf consume`, then kcat, from the broker now running.
consume_all() {  # $1: system tag
    local before after out
    before=$(cpu_seconds "$broker_pid")
    out=$("$samsa" perf consume --bootstrap "127.0.0.1:$broker_port" --json 2>/dev/null)
    after=$(cpu_seconds "$broker_pid")
    echo "$out" | with_cpu "$before" "$after" | tag "$1"
    if command -v kcat >/dev/null; then
        before=$(cpu_seconds "$broker_pid")
        local started ended
        started=$(date +%s%N)
        kcat -C -b "127.0.0.1:$broker_port" -t perf -p 0 -o beginning -e -q >/dev/null
        ended=$(date +%s%N)
        after=$(cpu_seconds "$broker_pid")
        python3 -c 'import json,sys; n=int(sys.argv[1]); s=(int(sys.argv[3])-int(sys.argv[2]))/1e9
print(json.dumps({"command":"consume","records":n,"seconds":round(s,3),"records_per_sec":n/s,"mb_per_sec":n*100/s/1e6}))' \
            "$records" "$started" "$ended" | with_cpu "$before" "$after" | tag "$1-kcat"
    fi
}

python=.build-bench-python/bin/python
if [ "${SAMSA_BENCH_ONLY:-}" != fetch ] && ! "$python" -c "import nats" 2>/dev/null; then
    python3 -m venv .build-bench-python && "$python" -m pip install -q nats-py==2.16.0
fi

only=${SAMSA_BENCH_ONLY:-}
for run in $(seq "$runs"); do
    echo "run $run of $runs" >&2
    if [ "$only" != fetch ]; then
    "$samsa" perf produce --dir "$work/embedded-$run" --records "$records" --record-size 100 --flush every-append --json 2>/dev/null | tag embedded
    "$samsa" perf consume --dir "$work/embedded-$run" --json 2>/dev/null | tag embedded
    rm -rf "$work/embedded-$run" || true
    fi

    start_broker "$work/broker-$run"
    "$samsa" perf produce --bootstrap "127.0.0.1:$broker_port" --records "$records" --record-size 100 --acks -1 --json 2>/dev/null | tag broker
    stop_broker
    # Zero-copy and copying fetch of the same data, the order alternating between runs.
    if [ $((run % 2)) -eq 1 ]; then modes="true false"; else modes="false true"; fi
    for zero_copy in $modes; do
        start_broker "$work/broker-$run" --zero-copy-fetch "$zero_copy"
        if [ "$zero_copy" = true ]; then consume_all broker-zero-copy; else consume_all broker-copying; fi
        stop_broker
    done
    rm -rf "$work/broker-$run" || true

    if [ "$only" != fetch ] && command -v nats-server >/dev/null; then
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
if [ "$only" != fetch ]; then
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
fi

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
groups = {}
for row in rows:
    groups.setdefault((row["system"], row["command"]), []).append(row)
print(f"{'system':<28} {'command':<8} {'runs':>4} {'records/s (median)':>20} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'broker CPU s':>12}")
for (system, command), items in sorted(groups.items()):
    rate = statistics.median(r["records_per_sec"] for r in items)
    mb = statistics.median(r["mb_per_sec"] for r in items)
    p50 = statistics.median(r["latency_ms"]["p50"] for r in items) if "latency_ms" in items[0] else float("nan")
    p99 = statistics.median(r["latency_ms"]["p99"] for r in items) if "latency_ms" in items[0] else float("nan")
    cpu = statistics.median(r["broker_cpu_s"] for r in items) if "broker_cpu_s" in items[0] else float("nan")
    print(f"{system:<28} {command:<8} {len(items):>4} {rate:>20,.0f} {mb:>8.1f} {p50:>8.2f} {p99:>8.2f} {cpu:>12.2f}")
PY
