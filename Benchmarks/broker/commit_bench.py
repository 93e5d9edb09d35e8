#!/usr/bin/env python3
"""Offset-commit throughput and latency of a broker: CLIENTS threads, each a confluent-kafka consumer of
its own group committing explicit offsets synchronously (a simple consumer's commit, generation -1) for
SECONDS, after one warm-up commit each (which also makes `__consumer_offsets` on a new broker).
Prints one JSON line: commits/s and the per-commit latency p50/p99 in ms.
    commit_bench.py HOST:PORT [CLIENTS] [SECONDS] [PARTITIONS]"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
partitions = int(sys.argv[4]) if len(sys.argv) > 4 else 4
topic = "commit-bench"

admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
    try:
        future.result()
    except Exception:
        pass  # already there

latencies = []
counts = []
lock = threading.Lock()
start_line = threading.Barrier(clients + 1)


def run(index):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{index}", "enable.auto.commit": False})
    offset = 0

    def commit():
        nonlocal offset
        offset += 1
        consumer.commit(offsets=[TopicPartition(topic, p, offset) for p in range(partitions)], asynchronous=False)

    commit()
    start_line.wait()
    mine = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.monotonic()
        commit()
        mine.append(time.monotonic() - began)
    consumer.close()
    with lock:
        latencies.extend(mine)
        counts.append(len(mine))


threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
for thread in threads:
    thread.start()
start_line.wait()
began = time.monotonic()
for thread in threads:
    thread.join()
elapsed = time.monotonic() - began
latencies.sort()


def percentile(q):
    return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0


print(json.dumps({"commits_per_sec": sum(counts) / elapsed, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99), "clients": clients}))
