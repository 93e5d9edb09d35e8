#!/usr/bin/env python3
"""Hostile soak (issue 20): a `samsa broker` under mixed hostile traffic beside real clients.

    hostile_soak.py SAMSA_BINARY WORK_DIR [--seconds 600] [--baseline 60] [--rate 2000]

Real clients (confluent-kafka): an idempotent acks=all producer sending numbered records at a steady
rate, and a consumer group of two reading them. After a baseline with only them, hostile threads run
until the end: garbage frames, connection floods, slowloris partial frames, zstd bombs, amplifying
fetches (one partition named 3,000 times, read and never read), JoinGroup storms, oversized
OffsetCommits, and pipelined metrics requests that are never read. The broker's RSS is sampled every
second. At the end: the producer is flushed, the group drains, the broker is stopped (SIGTERM),
restarted on the same directory, and a fresh consumer reads everything back.

Prints one JSON object: RSS (max, at the end), the producer's delivery latency p50/p99 in the baseline
and under attack, acknowledged / consumed / lost counts, hostile operations done, restart outcome.
Every loop is bounded in time; every socket goes to 127.0.0.1 only.
"""
import argparse
import json
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import zstandard
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.util import calc_crc32c

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- raw Kafka requests (non-flexible versions), for the hostile side -----------------------------

def kstring(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack(">h", len(data)) + data


def frame(api, version, correlation, body, client="hostile"):
    payload = struct.pack(">hhi", api, version, correlation) + kstring(client) + body
    return struct.pack(">i", len(payload)) + payload


def zstd_zeros_batch(total):
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    chunk = bytes(1 << 20)
    records = b"".join([compressor.compress(chunk) for _ in range(total >> 20)] + [compressor.flush()])
    body = struct.pack(">hiqqqhii", 4, 0, 1, 1, -1, -1, -1, 1) + records
    rest = struct.pack(">ibI", -1, 2, calc_crc32c(body)) + body
    return struct.pack(">qi", 0, len(rest)) + rest


def produce_request(topic, partitions, batch, correlation):
    parts = b"".join(struct.pack(">ii", p, len(batch)) + batch for p in partitions)
    body = struct.pack(">hhi", -1, 1, 30000) + struct.pack(">i", 1) + kstring(topic) + struct.pack(">i", len(partitions)) + parts
    return frame(0, 3, correlation, body)


def fetch_request(topic, partition, times, correlation):
    # Fetch v4: replica, max wait, min bytes, max bytes, isolation, [topic [partition, offset, max bytes]].
    entry = struct.pack(">iqi", partition, 0, 1 << 20)
    body = struct.pack(">iiiib", -1, 100, 1, 52428800, 0) + struct.pack(">i", 1) + kstring(topic) + struct.pack(">i", times) + entry * times
    return frame(1, 4, correlation, body)


def join_group_request(group, correlation, client):
    # JoinGroup v4 with an empty member id: the broker hands out one (KIP-394) and asks to rejoin.
    protocol = kstring("range") + struct.pack(">i", 4) + b"\0\0\0\0"
    body = kstring(group) + struct.pack(">ii", 10000, 10000) + kstring("") + kstring("consumer") + struct.pack(">i", 1) + protocol
    return frame(11, 4, correlation, body, client)


def offset_commit_request(group, topic, copies, metadata, correlation):
    # OffsetCommit v2: group, generation, member, retention, [topic [partition, offset, metadata]].
    entry = struct.pack(">iq", 0, 1) + kstring(metadata)
    body = kstring(group) + struct.pack(">i", -1) + kstring("") + struct.pack(">q", -1) + struct.pack(">i", 1) + kstring(topic)
    body += struct.pack(">i", copies) + entry * copies
    return frame(8, 2, correlation, body)


def read_frame(sock):
    size = struct.unpack(">i", recv_exactly(sock, 4))[0]
    return recv_exactly(sock, size)


def recv_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(min(count - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


# --- the soak ------------------------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.port = free_port()
        self.metrics_port = free_port()
        self.data = os.path.join(args.work, "data")
        self.stop_hostile = threading.Event()
        self.stop_real = threading.Event()
        self.lock = threading.Lock()
        self.latencies = {"baseline": [], "hostile": []}
        self.phase = "baseline"
        self.acknowledged = set()
        self.delivery_errors = []
        self.consumed = set()
        self.hostile_counts = {}
        self.rss = []
        self.broker = None

    def count(self, what, n=1):
        with self.lock:
            self.hostile_counts[what] = self.hostile_counts.get(what, 0) + n

    def start_broker(self):
        log = open(os.path.join(self.args.work, "broker.log"), "ab")
        self.broker = subprocess.Popen(
            [self.args.samsa, "broker", "--dir", self.data, "--listen", f"{HOST}:{self.port}", "--metrics", f"{HOST}:{self.metrics_port}"],
            stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("broker did not start")

    def stop_broker(self):
        if self.broker.poll() is not None:
            return f"died before the stop, exit {self.broker.returncode} (see broker.log)"
        self.broker.send_signal(signal.SIGTERM)
        try:
            return self.broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.broker.kill()
            return "killed after 30 s"

    def sample_rss(self):
        while not self.stop_real.is_set():
            try:
                with open(f"/proc/{self.broker.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            self.rss.append(int(line.split()[1]) // 1024)
            except OSError:
                pass
            time.sleep(1)

    # Real clients.
    def produce(self):
        producer = Producer({"bootstrap.servers": f"{HOST}:{self.port}", "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        sequence = 0
        started = time.time()

        def delivered(error, message, sent, phase, number):
            if error is not None:
                self.delivery_errors.append(str(error))
                return
            with self.lock:
                self.acknowledged.add(number)
                self.latencies[phase].append(time.time() - sent)

        while not self.stop_real.is_set():
            target = int((time.time() - started) * self.args.rate)
            while sequence < target:
                now, phase, number = time.time(), self.phase, sequence
                producer.produce("real", value=str(number).encode(), key=str(number % 97).encode(),
                                 on_delivery=lambda e, m, s=now, p=phase, n=number: delivered(e, m, s, p, n))
                sequence += 1
            producer.poll(0.005)
        producer.flush(60)
        self.produced = sequence

    def consume(self, stop):
        consumer = Consumer({"bootstrap.servers": f"{HOST}:{self.port}", "group.id": "soak-group", "auto.offset.reset": "earliest"})
        consumer.subscribe(["real"])
        while not stop.is_set():
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            with self.lock:
                self.consumed.add(int(message.value()))
        consumer.close()

    # Hostile clients: each loops until `stop_hostile`, every operation bounded by socket timeouts.
    def hostile(self, name, body):
        def loop():
            while not self.stop_hostile.is_set():
                try:
                    body()
                except (OSError, ConnectionError, struct.error):
                    self.count(f"{name}: refused or closed")
                    time.sleep(0.05)
        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        return thread

    def connect(self, port=None, timeout=5):
        sock = socket.create_connection((HOST, port or self.port), timeout=timeout)
        return sock

    def garbage(self):
        with self.connect() as sock:
            choice = random.randrange(3)
            if choice == 0:
                sock.sendall(os.urandom(random.randrange(1, 4096)))
            elif choice == 1:
                sock.sendall(struct.pack(">i", -5) + os.urandom(16))
            else:
                sock.sendall(struct.pack(">i", 0x7FFFFFFF) + os.urandom(64))
            try:
                sock.recv(1)
            except OSError:
                pass
        self.count("garbage frames")
        time.sleep(0.01)

    def flood(self):
        sockets = []
        try:
            for _ in range(800):
                if self.stop_hostile.is_set():
                    break
                sockets.append(self.connect(timeout=2))
                self.count("flood connections")
        finally:
            self.stop_hostile.wait(5)
            for sock in sockets:
                sock.close()

    def slowloris(self):
        sockets = []
        try:
            for _ in range(100):
                sock = self.connect()
                sock.sendall(struct.pack(">i", 100 << 20) + b"\0" * 1024)
                sockets.append(sock)
                self.count("slowloris connections")
            for _ in range(10):
                if self.stop_hostile.wait(2):
                    break
                for sock in sockets:
                    sock.sendall(b"\0" * 64)
        finally:
            for sock in sockets:
                sock.close()

    def bombs(self):
        with self.connect(timeout=60) as sock:
            sock.sendall(produce_request("bombs", list(range(16)), self.bomb, random.randrange(1 << 30)))
            read_frame(sock)
        self.count("zstd bomb requests (16 partitions each)")

    def amplifying_fetch(self, read):
        with self.connect(timeout=30) as sock:
            sock.sendall(fetch_request("amp", 0, 3000, 1))
            if read:
                read_frame(sock)
                self.count("amplifying fetches read")
            else:
                self.count("amplifying fetches never read")
                self.stop_hostile.wait(10)

    def group_storm(self):
        with self.connect() as sock:
            for index in range(200):
                sock.sendall(join_group_request(f"storm-{random.randrange(1 << 40)}", index, "storm-" + "c" * 300))
            for _ in range(200):
                read_frame(sock)
        self.count("JoinGroup requests", 200)

    def oversized_commit(self):
        with self.connect() as sock:
            sock.sendall(offset_commit_request("g" * 32000, "real", 2200, "m" * 5000, 7))
            read_frame(sock)
        self.count("oversized OffsetCommits")

    def metrics_pipeline(self):
        with self.connect(self.metrics_port) as sock:
            request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            try:
                for _ in range(200):
                    sock.sendall(request * 50)
                    self.count("metrics requests never read", 50)
            except OSError:
                self.count("metrics connection stopped reading or closed")
            self.stop_hostile.wait(5)

    def p(self, values, q):
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    def run(self):
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
        os.makedirs(self.args.work, exist_ok=True)
        self.start_broker()
        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self.port}"})
        for future in admin.create_topics([
            NewTopic("real", 6, 1), NewTopic("bombs", 16, 1), NewTopic("amp", 1, 1, config={"max.message.bytes": "2000000"}),
        ]).values():
            future.result(30)
        seed = Producer({"bootstrap.servers": f"{HOST}:{self.port}", "message.max.bytes": 2000000})
        seed.produce("amp", value=os.urandom(1 << 20))
        seed.flush(30)
        self.bomb = zstd_zeros_batch(2 << 30)
        threading.Thread(target=self.sample_rss, daemon=True).start()
        producer = threading.Thread(target=self.produce)
        producer.start()
        consumers_stop = threading.Event()
        consumers = [threading.Thread(target=self.consume, args=(consumers_stop,)) for _ in range(2)]
        for consumer in consumers:
            consumer.start()
        time.sleep(self.args.baseline)
        baseline_rss = max(self.rss) if self.rss else None
        self.phase = "hostile"
        threads = [
            self.hostile("garbage", self.garbage), self.hostile("flood", self.flood), self.hostile("slowloris", self.slowloris),
            self.hostile("bombs", self.bombs), self.hostile("fetch-read", lambda: self.amplifying_fetch(True)),
            self.hostile("fetch-unread", lambda: self.amplifying_fetch(False)), self.hostile("groups", self.group_storm),
            self.hostile("commits", self.oversized_commit), self.hostile("metrics", self.metrics_pipeline),
        ]
        time.sleep(max(0, self.args.seconds - self.args.baseline))
        self.stop_hostile.set()
        for thread in threads:
            thread.join(60)
        self.stop_real.set()
        producer.join(120)
        drain_deadline = time.time() + 60
        while time.time() < drain_deadline and not self.acknowledged <= self.consumed:
            time.sleep(0.5)
        consumers_stop.set()
        for consumer in consumers:
            consumer.join(30)
        end_rss = self.rss[-1] if self.rss else None
        stop_status = self.stop_broker()
        # Restart on the same directory; a fresh group reads everything back.
        self.start_broker()
        reread = set()
        reader = Consumer({"bootstrap.servers": f"{HOST}:{self.port}", "group.id": "soak-verify", "auto.offset.reset": "earliest"})
        reader.subscribe(["real"])
        deadline = time.time() + 120
        while time.time() < deadline and not self.acknowledged <= reread:
            message = reader.poll(0.5)
            if message is not None and not message.error():
                reread.add(int(message.value()))
        reader.close()
        restart_status = self.stop_broker()
        print(json.dumps({
            "seconds": self.args.seconds, "baseline_seconds": self.args.baseline, "rate": self.args.rate,
            "rss_mib": {"baseline_max": baseline_rss, "max": max(self.rss) if self.rss else None, "end": end_rss},
            "produce_latency_ms": {
                phase: {"count": len(values), "p50": self.p(values, 0.5), "p99": self.p(values, 0.99)}
                for phase, values in self.latencies.items()
            },
            "produced": self.produced, "acknowledged": len(self.acknowledged), "delivery_errors": len(self.delivery_errors),
            "first_delivery_errors": self.delivery_errors[:3],
            "consumed_by_group": len(self.consumed & self.acknowledged),
            "lost_after_restart": len(self.acknowledged - reread),
            "broker_exit_after_soak": stop_status, "broker_exit_after_restart": restart_status,
            "hostile_operations": self.hostile_counts,
        }, indent=1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("samsa")
    parser.add_argument("work")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--baseline", type=int, default=60)
    parser.add_argument("--rate", type=int, default=2000)
    Soak(parser.parse_args()).run()


if __name__ == "__main__":
    main()
