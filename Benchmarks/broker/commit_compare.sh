#!/usr/bin/env bash
# Offset commits of two `samsa broker` builds in one session, interleaved per round: a single broker
# (--flush every-append, its default) and commit_bench.py (CLIENTS confluent-kafka consumers, each
# committing PARTITIONS offsets synchronously in a loop for SECONDS). Medians at the end.
#   BASE=old/samsa NEW=new/samsa PYTHON=venv/bin/python Benchmarks/broker/commit_compare.sh [ROUNDS] [CLIENTS] [SECONDS]
set -euo pipefail
BASE=${BASE:?set BASE to the baseline samsa binary}
NEW=${NEW:?set NEW to the samsa binary to measure}
PYTHON=${PYTHON:?set PYTHON to a python with confluent-kafka}
rounds=${1:-3}
clients=${2:-8}
seconds=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/samsa-commit-compare.XXXXXX)
results="$work/results.jsonl"
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

measure() {  # label binary
    local label=$1 binary=$2 port out
    port=$(free_port)
    rm -rf "$work/data"
    "$binary" broker --dir "$work/data" --listen "127.0.0.1:$port" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    out=$("$PYTHON" "$here/commit_bench.py" "127.0.0.1:$port" "$clients" "$seconds")
    kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" "$out" >>"$results"
}

for round in $(seq 1 "$rounds"); do
    measure base "$BASE"
    measure new "$NEW"
    echo "round $round done" >&2
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| broker | commits/s | p50 ms | p99 ms | runs |")
print("|---|---|---|---|---|")
m = {}
for label in ("base", "new"):
    runs = [r for r in rows if r["label"] == label]
    m[label] = {k: statistics.median(r[k] for r in runs) for k in ("commits_per_sec", "p50_ms", "p99_ms")}
    print(f"| {label} | {m[label]['commits_per_sec']:,.0f} | {m[label]['p50_ms']:.2f} | {m[label]['p99_ms']:.2f} | {len(runs)} |")
print(f"new/base commits/s: {m['new']['commits_per_sec'] / m['base']['commits_per_sec']:.2f}")
PY
