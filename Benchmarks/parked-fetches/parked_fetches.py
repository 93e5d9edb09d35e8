"""Parks N long-poll Fetch v4 requests on one partition and re-sends each as soon as it is answered.

usage: parked_fetches.py HOST PORT TOPIC N SECONDS [MIN_BYTES] [PARTITION_MAX_BYTES]
Each fetch reads partition 0 from offset 0 with max_wait 30 s, so it can only be satisfied by
MIN_BYTES (default 10 MB) of new data within PARTITION_MAX_BYTES (default 64 KiB): it never is,
and an append that wakes it only makes it read again and wait again.
"""
import selectors, socket, struct, sys, time

host, port, topic, n, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), int(sys.argv[4]), float(sys.argv[5])
min_bytes = int(sys.argv[6]) if len(sys.argv) > 6 else 10_000_000
partition_max = int(sys.argv[7]) if len(sys.argv) > 7 else 65536

def fetch(correlation):
    body = struct.pack(">iiiib", -1, 30_000, min_bytes, 50_000_000, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic
    body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, partition_max)
    header = struct.pack(">hhih", 1, 4, correlation, 6) + b"parked"
    frame = header + body
    return struct.pack(">i", len(frame)) + frame

selector = selectors.DefaultSelector()
buffers = {}
for i in range(n):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    s.sendall(fetch(i))
    buffers[s] = b""
    selector.register(s, selectors.EVENT_READ)
answered = 0
end = time.time() + seconds
while time.time() < end:
    for key, _ in selector.select(timeout=0.5):
        s = key.fileobj
        data = s.recv(1 << 20)
        if not data:
            selector.unregister(s)
            continue
        buffers[s] += data
        while len(buffers[s]) >= 4:
            size = struct.unpack(">i", buffers[s][:4])[0]
            if len(buffers[s]) < 4 + size:
                break
            buffers[s] = buffers[s][4 + size:]
            answered += 1
            s.setblocking(True)
            s.sendall(fetch(answered))
            s.setblocking(False)
print(f"parked {n} fetches for {seconds:.0f} s, {answered} answered")
