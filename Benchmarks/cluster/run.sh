#!/usr/bin/env bash
# Replication benchmark: three `samsa broker` processes (release) on a standalone ZooKeeper (Debian's
# `zookeeper`), all on this machine with the load generator (`samsa perf produce --bootstrap`). Same run,
# interleaved: a topic with replication factor 1 and one with replication factor 3 and
# min.insync.replicas=2 (one partition each), acks=-1 and acks=1, 100 B and 1 KiB records. Then produce
# latency on the RF 3 topic with acks=-1 at half its median maximum rate. Prints medians.
#   Benchmarks/cluster/run.sh [RUNS=3] [RECORDS_100B=1000000]       (from the repository root)
#   SAMSA_BIN=/path/to/samsa Benchmarks/cluster/run.sh ...          (measure that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
records=${2:-1000000}
source scripts/setup.sh
require_swift
require_debian_packages zookeeper
# SAMSA_BIN: a samsa binary to measure instead of this checkout's release build (same-run comparisons).
if [ -z "${SAMSA_BIN:-}" ]; then
    swift build -c release --product samsa 2>&1 | grep -E "error|warning:|Build" | tail -3
fi
samsa=${SAMSA_BIN:-.build/release/samsa}
work=$(mktemp -d /tmp/samsa-cluster-bench.XXXXXX)
results=${SAMSA_BENCH_RESULTS:-/tmp/samsa-cluster-bench-results.jsonl}
: >"$results"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

# ZooKeeper, standalone.
zk_port=$(free_port)
mkdir -p "$work/zk"
printf 'tickTime=500\ndataDir=%s/zk/data\nclientPort=%s\nadmin.enableServer=false\n' "$work" "$zk_port" >"$work/zk/zoo.cfg"
classpath=$(for jar in zookeeper.jar zookeeper-jute.jar slf4j-api.jar slf4j-simple.jar netty-all.jar; do
    [ -f "/usr/share/java/$jar" ] && printf '/usr/share/java/%s:' "$jar"; done)
java -Xmx128m -cp "$classpath" org.apache.zookeeper.server.ZooKeeperServerMain "$work/zk/zoo.cfg" >"$work/zk/log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$zk_port),1).close()" 2>/dev/null && break; sleep 0.1; done

# Three brokers.
ports=()
for id in 1 2 3; do
    port=$(free_port)
    "$samsa" broker --dir "$work/broker-$id" --listen "127.0.0.1:$port" --broker-id "$id" \
        --coordination "zookeeper://127.0.0.1:$zk_port/samsa" --session-timeout-ms 6000 >"$work/broker-$id.out" 2>"$work/broker-$id.err" &
    pids+=($!)
    ports+=("$port")
done
for id in 1 2 3; do
    for _ in $(seq 200); do grep -q "listening on" "$work/broker-$id.out" 2>/dev/null && break; sleep 0.1; done
done
bootstrap="127.0.0.1:${ports[0]}"
"$samsa" topics create --bootstrap "$bootstrap" --topic rf1 --partitions 1 --replication-factor 1
"$samsa" topics create --bootstrap "$bootstrap" --topic rf3 --partitions 1 --replication-factor 3 --config min.insync.replicas=2
"$samsa" topics describe --bootstrap "$bootstrap"

tag() { python3 -c 'import json,sys
for line in sys.stdin:
    line=line.strip()
    if line.startswith("{"): d=json.loads(line); d["case"]=sys.argv[1]; print(json.dumps(d))' "$1" >>"$results"; }

for run in $(seq "$runs"); do
    echo "run $run of $runs" >&2
    for size in 100 1024; do
        count=$records
        [ "$size" -eq 1024 ] && count=$((records / 5))
        for acks in -1 1; do
            for topic in rf1 rf3; do
                "$samsa" perf produce --bootstrap "$bootstrap" --topic "$topic" --records "$count" --record-size "$size" --acks "$acks" --json 2>/dev/null \
                    | tag "$topic acks=$acks ${size}B"
            done
        done
    done
done

half=$(python3 -c 'import json,statistics,sys
rates=[json.loads(l)["records_per_sec"] for l in open(sys.argv[1]) if json.loads(l)["case"]=="rf3 acks=-1 100B"]
print(int(statistics.median(rates)/2))' "$results")
for run in $(seq "$runs"); do
    "$samsa" perf produce --bootstrap "$bootstrap" --topic rf3 --records $((half * 5)) --record-size 100 --acks -1 --throughput "$half" --json 2>/dev/null \
        | tag "rf3 acks=-1 100B at $half/s"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault(d["case"], []).append(d)
def med(case, key):
    return statistics.median(r["latency_ms"][key] if key in ("p50", "p99") else r[key] for r in rows[case])
print(f"{'case':34} {'records/s':>12} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}  runs")
for case in rows:
    print(f"{case:34} {med(case,'records_per_sec'):12,.0f} {med(case,'mb_per_sec'):8.1f} {med(case,'p50'):8.2f} {med(case,'p99'):8.2f}  {len(rows[case])}")
for size in ("100B", "1024B"):
    for acks in ("-1", "1"):
        a, b = f"rf3 acks={acks} {size}", f"rf1 acks={acks} {size}"
        if a in rows and b in rows:
            print(f"RF 3 / RF 1, acks={acks}, {size}: {med(a,'records_per_sec') / med(b,'records_per_sec'):.2f}x")
PY
