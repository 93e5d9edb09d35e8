#!/bin/bash
# usage: Benchmarks/parked-fetches/run.sh SAMSA_BINARY PARKED [RATE] [SECONDS]
# A fresh broker (flush every-append), a topic, PARKED parked fetches, then perf produce --acks -1
# at RATE records/s for SECONDS; prints the producer's JSON summary and the broker's CPU seconds.
set -e
samsa=$1; parked=$2; rate=${3:-1000}; seconds=${4:-20}
port=$((20000 + RANDOM % 20000))
dir=$(mktemp -d /tmp/fetch-bench-data.XXXX)
$samsa broker --dir $dir --listen 127.0.0.1:$port > $dir.broker.log 2>&1 &
broker=$!
for i in $(seq 100); do grep -q listening $dir.broker.log && break; sleep 0.1; done
$samsa topics create --bootstrap 127.0.0.1:$port --topic perf --partitions 1 > /dev/null
if [ "$parked" -gt 0 ]; then
  ${SAMSA_PYTHON:-python3} "$(dirname "$0")/parked_fetches.py" 127.0.0.1 $port perf $parked $((seconds + 15)) &
  parker=$!
  sleep 5
fi
$samsa perf produce --bootstrap 127.0.0.1:$port --topic perf --records $((rate * seconds)) --record-size 100 --throughput $rate --acks -1 --json | tail -1
echo "broker cpu seconds: $(ps -o times= -p $broker)"
if [ -n "$parker" ]; then kill $parker 2>/dev/null; wait $parker 2>/dev/null || true; fi
kill $broker; wait $broker 2>/dev/null || true
rm -rf $dir $dir.broker.log
