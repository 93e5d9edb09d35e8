#!/usr/bin/env bash
# Two `samsa broker` builds in one session, interleaved per round, driven by one client binary so only
# the broker differs: produce (acks=-1, 100 B records, uncompressed and zstd) and consume with
# `samsa perf --bootstrap`, and the broker's CPU seconds from /proc/PID/stat. Medians at the end.
#   BASE=old/samsa NEW=new/samsa Benchmarks/broker/compare.sh [ROUNDS] [RECORDS]
set -euo pipefail
BASE=${BASE:?set BASE to the baseline samsa binary}
NEW=${NEW:?set NEW to the samsa binary to measure}
rounds=${1:-3}
records=${2:-1000000}
client=$NEW
work=$(mktemp -d /tmp/samsa-broker-compare.XXXXXX)
results="$work/results.jsonl"
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

measure() {  # label binary compression
    local label=$1 binary=$2 compression=$3 port
    port=$(free_port)
    rm -rf "$work/data"
    "$binary" broker --dir "$work/data" --listen "127.0.0.1:$port" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local produce consume cpu
    produce=$("$client" perf produce --bootstrap "127.0.0.1:$port" --records "$records" --record-size 100 --acks -1 \
        --compression "$compression" --json 2>/dev/null)
    consume=$("$client" perf consume --bootstrap "127.0.0.1:$port" --json 2>/dev/null)
    cpu=$(cpu_seconds "$broker_pid")
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
    python3 -c 'import json,sys; p=json.loads(sys.argv[2]); c=json.loads(sys.argv[3])
print(json.dumps({"label": sys.argv[1], "produce": p["records_per_sec"], "p99": p["latency_ms"]["p99"],
                  "consume": c["records_per_sec"], "cpu": float(sys.argv[4])}))' "$label" "$produce" "$consume" "$cpu" >>"$results"
}

for round in $(seq 1 "$rounds"); do
    for compression in ${SAMSA_COMPARE_CODECS:-none zstd}; do
        measure "base $compression" "$BASE" "$compression"
        measure "new $compression" "$NEW" "$compression"
    done
    echo "round $round done" >&2
done
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
labels = sorted({row["label"] for row in rows})
print("| broker | produce records/s | consume records/s | broker CPU s | runs |")
print("|---|---|---|---|---|")
medians = {}
for label in labels:
    runs = [row for row in rows if row["label"] == label]
    m = {key: statistics.median(row[key] for row in runs) for key in ("produce", "p99", "consume", "cpu")}
    medians[label] = m
    print(f"| {label} | {m['produce']:,.0f} (p99 {m['p99']:.1f} ms) | {m['consume']:,.0f} | {m['cpu']:.2f} | {len(runs)} |")
for compression in ("none", "zstd"):
    base, new = medians.get(f"base {compression}"), medians.get(f"new {compression}")
    if base and new:
        print(f"{compression}: new/base produce {new['produce'] / base['produce']:.2f}x, consume {new['consume'] / base['consume']:.2f}x, "
              f"broker CPU {new['cpu'] / base['cpu']:.2f}x")
EOF
