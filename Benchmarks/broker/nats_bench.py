#!/usr/bin/env python3
"""JetStream produce/consume load for the broker benchmark: 100 B messages into one file-store stream.

The stream and consumer are set up with nats-py; the hot loops speak the NATS text protocol on a raw
socket (pipelined PUBs with a window of unacknowledged messages, pull batches), so the load generator is
not Python's per-message overhead. Prints one JSON line per phase, like `samsa perf --json`.
"""
import argparse, asyncio, json, socket, time

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig


async def setup(url, stream, subject):
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.delete_stream(stream)
    except Exception:
        pass
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
    await js.add_consumer(stream, ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.NONE))
    await nc.close()


def connect(host, port):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.recv(65536)  # INFO
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n')
    return s


class Counter:
    """Counts occurrences of a marker in a byte stream whose chunks may split it."""

    def __init__(self, marker):
        self.marker, self.tail, self.count = marker, b"", 0

    def feed(self, data):
        # The kept tail is shorter than the marker, so no match is counted twice.
        data = self.tail + data
        self.count += data.count(self.marker)
        self.tail = data[-(len(self.marker) - 1):]


def produce(host, port, subject, records, size, window):
    s = connect(host, port)
    s.sendall(b"SUB _INBOX.ack.* 1\r\nPING\r\n")
    payload = (b"x" * size)
    acks = Counter(b"MSG _INBOX.ack.")
    sent, chunk = 0, 2000
    start = time.perf_counter()
    while acks.count < records:
        if sent < records and sent - acks.count < window:
            n = min(chunk, records - sent, window - (sent - acks.count))
            s.sendall(b"".join(b"PUB %s _INBOX.ack.%d %d\r\n%s\r\n" % (subject, sent + i, size, payload) for i in range(n)))
            sent += n
            s.setblocking(False)
            try:
                while True:
                    data = s.recv(1 << 20)
                    if not data:
                        raise SystemExit("server closed")
                    acks.feed(data)
            except BlockingIOError:
                pass
            s.setblocking(True)
        else:
            acks.feed(s.recv(1 << 20))
    seconds = time.perf_counter() - start
    s.close()
    return seconds


def consume(host, port, stream, records, batch):
    s = connect(host, port)
    s.sendall(b"SUB _INBOX.pull 2\r\n")
    messages = Counter(b"MSG bench ")
    requested = 0
    start = time.perf_counter()
    while messages.count < records:
        if messages.count >= requested:
            n = min(batch, records - requested)
            request = json.dumps({"batch": n, "expires": 5_000_000_000}).encode()
            s.sendall(b"PUB $JS.API.CONSUMER.MSG.NEXT.%s.bench _INBOX.pull %d\r\n%s\r\n" % (stream, len(request), request))
            requested += n
        messages.feed(s.recv(1 << 20))
    seconds = time.perf_counter() - start
    s.close()
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--window", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(setup(f"nats://127.0.0.1:{args.port}", "BENCH", "bench"))
    for command, seconds in (
        ("produce", produce("127.0.0.1", args.port, b"bench", args.records, args.record_size, args.window)),
        ("consume", consume("127.0.0.1", args.port, b"BENCH", args.records, 50_000)),
    ):
        print(json.dumps({"command": command, "system": "nats-jetstream", "records": args.records, "seconds": seconds,
                          "records_per_sec": args.records / seconds, "mb_per_sec": args.records * args.record_size / seconds / 1e6}))


if __name__ == "__main__":
    main()
