"""Three confluent-kafka members of ONE consumer group, each bootstrapped from a different broker,
consuming while a producer writes, for SamsaBrokerTests.GroupFailoverProcessTests.

    group_failover.py SCENARIO BROKER1,BROKER2,BROKER3 TOPIC PARTITIONS GROUP

SCENARIO: eager (librdkafka's default range,roundrobin), cooperative (cooperative-sticky), or static
(group.instance.id per member). The topic exists. A producer (acks=all, idempotent) writes paced records
round-robin over the partitions for the whole run, so the members consume at the log's tail.

Commits: enable.auto.commit every 500 ms with enable.auto.offset.store=false, the offset stored after
each record is processed (librdkafka's at-least-once pattern): only processed records are ever committed,
librdkafka commits the stored offsets on revoke and close, and the uncommitted window is what a member
processed since its last acknowledged commit (about 500 ms of records, longer while no coordinator answers).

Talks with its parent by lines. eager/cooperative: prints `kill-now` once the group is stable; the parent
kills the coordinator and writes `killed`; prints `recovered SECONDS` (or `not-recovered`) once every
partition has had a record processed and a commit acknowledged after the kill; the parent restarts the
broker and writes `restarted`. static: after a stable start, member 0 is closed (a static member sends no
LeaveGroup) and started again with the same group.instance.id; the others must see no rebalance.

Then the producer stops, the members drain to the log end and close, a new member of the group must read
nothing, and the last line is one JSON object: `violations` (category -> descriptions; all must be empty),
`figures`, the log `ends` by partition, and `counts`.
"""
import json
import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, version

SESSION_MS = 6000
COMMIT_INTERVAL_MS = 500
T0 = time.monotonic()


def now():
    return round(time.monotonic() - T0, 4)


class Journal:
    """Everything the members did, in one place (callbacks run on the members' own threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.processed = []  # (member, partition, offset, time)
        self.ownership = []  # (member, "assign"|"revoke"|"lost"|"closed", [partitions], time)
        self.commits = []  # (member, partition, next offset, time) acknowledged
        self.errors = []  # client errors (information: a dead broker's transport errors are normal)
        self.fatal = []

    def add(self, kind, item):
        with self.lock:
            getattr(self, kind).append(item)


journal = Journal()


class Member:
    """One consumer on a thread of its own: poll, process (journal), store the offset."""

    def __init__(self, name, bootstrap, topic, group, scenario):
        self.name, self.topic = name, topic
        config = {
            "bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 1000,
            "enable.auto.commit": True, "auto.commit.interval.ms": COMMIT_INTERVAL_MS, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000,
            "on_commit": self.committed, "error_cb": self.error,
        }
        if scenario == "cooperative":
            config["partition.assignment.strategy"] = "cooperative-sticky"
        if scenario == "static":
            config["group.instance.id"] = f"{group}-{name.split('.')[0]}"
        self.consumer = Consumer(config)
        self.stopping = threading.Event()
        self.closed_at = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def committed(self, error, partitions):
        if error is not None:
            if error.code() != KafkaError._NO_OFFSET:
                journal.add("errors", f"{now()} {self.name} commit: {error}")
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                journal.add("commits", (self.name, tp.partition, tp.offset, now()))
            elif tp.error is not None:
                journal.add("errors", f"{now()} {self.name} commit {tp.partition}: {tp.error}")

    def error(self, error):
        journal.add("fatal" if error.fatal() else "errors", f"{now()} {self.name}: {error}")

    def assigned(self, consumer, partitions):
        journal.add("ownership", (self.name, "assign", [tp.partition for tp in partitions], now()))

    def revoked(self, consumer, partitions):
        # Taken last: ownership ends when the callback returns (nothing is processed after it).
        journal.add("ownership", (self.name, "revoke", [tp.partition for tp in partitions], now()))

    def lost(self, consumer, partitions):
        journal.add("ownership", (self.name, "lost", [tp.partition for tp in partitions], now()))

    def run(self):
        self.consumer.subscribe([self.topic], on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.lost)
        while not self.stopping.is_set():
            message = self.consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    journal.add("errors", f"{now()} {self.name} poll: {message.error()}")
                continue
            journal.add("processed", (self.name, message.partition(), message.offset(), now()))
            self.consumer.store_offsets(message=message)
        self.consumer.close()  # commits the stored offsets, revokes (static: sends no LeaveGroup)
        self.closed_at = now()
        journal.add("ownership", (self.name, "closed", [], self.closed_at))

    def close(self, timeout=30):
        self.stopping.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            journal.add("fatal", f"{self.name} did not close within {timeout} s")


class Paced:
    """The producer: acks=all, idempotent, about 300 records a second round-robin, until stopped."""

    def __init__(self, bootstrap, topic, partitions):
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
            "message.timeout.ms": 60000, "topic.metadata.refresh.interval.ms": 1000,
        })
        self.topic, self.partitions = topic, partitions
        self.delivered = []
        self.failed = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def report(self, error, message):
        if error is not None:
            self.failed.append(f"{message.partition()}: {error}")
        else:
            self.delivered.append((message.partition(), message.offset()))

    def run(self):
        index = 0
        while not self.stopping.is_set():
            for _ in range(6):
                self.producer.produce(self.topic, value=f"r-{index}".encode(), partition=index % self.partitions, on_delivery=self.report)
                index += 1
            self.producer.poll(0)
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        return self.producer.flush(60)


def wait(condition, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def owners(until=None):
    """Each member's current partitions from the ownership events (to `until`)."""
    owned = {}
    with journal.lock:
        events = list(journal.ownership)
    for member, kind, partitions, at in events:
        if until is not None and at is not None and at > until:
            break
        current = owned.setdefault(member, set())
        if kind == "assign":
            current |= set(partitions)
        elif kind == "closed":
            current.clear()
        elif kind in ("revoke", "lost"):
            current -= set(partitions)
    return owned


def stable(partitions, quiet):
    """Every partition owned by some member, no ownership change for `quiet` seconds, each member processed."""
    owned = owners()
    with journal.lock:
        last_change = max((at for _, _, _, at in journal.ownership), default=0)
        busy = {member for member, _, _, _ in journal.processed}
    covered = set().union(*owned.values()) if owned else set()
    return covered == set(range(partitions)) and now() - last_change >= quiet and all(m in busy for m in owned if owned[m])


class Parent:
    """Lines from the parent on stdin, read on a thread so every wait is bounded."""

    def __init__(self):
        self.lines = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in sys.stdin:
            self.lines.put(line.strip())
        self.lines.put("eof")

    def expect(self, word, seconds):
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return False
        return line == word


def say(line):
    print(line, flush=True)


def intervals(closed_at):
    """(member, partition) ownership intervals [start, end) from the callbacks."""
    result = []
    open_since = {}
    with journal.lock:
        events = sorted(journal.ownership, key=lambda e: e[3])
    for member, kind, partitions, at in events:
        if kind == "assign":
            for p in partitions:
                open_since.setdefault((member, p), at)
        else:
            ended = partitions if kind != "closed" else [p for (m, p) in open_since if m == member]
            for p in ended:
                if (member, p) in open_since:
                    result.append((member, p, open_since.pop((member, p)), at))
    for (member, p), start in open_since.items():
        result.append((member, p, start, closed_at))
    return result


def check(violations, partitions, ends, closed_at):
    spans = intervals(closed_at)
    # (a) one owner at a time.
    for p in range(partitions):
        mine = sorted((s for s in spans if s[1] == p), key=lambda s: s[2])
        for i, a in enumerate(mine):
            for b in mine[i + 1:]:
                if b[0] != a[0] and b[2] < a[3]:
                    violations["two_owners"].append(f"partition {p}: {a[0]} [{a[2]}, {a[3]}) and {b[0]} [{b[2]}, {b[3]})")
    with journal.lock:
        processed = sorted(journal.processed, key=lambda r: r[3])
        commits = sorted(journal.commits, key=lambda c: c[3])

    def span_of(member, p, at):
        for s in spans:
            if s[0] == member and s[1] == p and s[2] <= at <= s[3]:
                return s
        return None

    def committed_before(p, at):
        return max((c[2] for c in commits if c[1] == p and c[3] < at), default=-1)

    seen = {}
    for member, p, offset, at in processed:
        span = span_of(member, p, at)
        if span is None:
            violations["processed_unowned"].append(f"{member} processed {p}/{offset} at {at} without owning it")
        if (p, offset) in seen:
            # Legitimate only inside the uncommitted window: at or past every commit acknowledged
            # before this member's ownership began (where it fetched its starting offset).
            floor = committed_before(p, span[2] if span else at)
            if offset < floor:
                violations["reprocessed_committed"].append(
                    f"{p}/{offset} by {seen[(p, offset)]} then by {member} at {at}, below the commit {floor} acknowledged before")
        seen[(p, offset)] = member
    return seen


def main():
    scenario, brokers, topic, partitions, group = sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    parent = Parent()
    violations = {k: [] for k in (
        "two_owners", "processed_unowned", "reprocessed_committed", "unprocessed", "not_committed", "new_member_read",
        "static_rebalanced", "static_assignment_changed", "produce_failed", "fatal", "protocol")}
    figures = {}
    producer = Paced(",".join(brokers), topic, partitions)
    members = [Member(f"m{i}", brokers[i % len(brokers)], topic, group, scenario) for i in range(3)]

    if not wait(lambda: stable(partitions, 3.0), 60):
        violations["protocol"].append(f"the group was not stable within 60 s: {owners()}")

    if scenario == "static":
        before = owners()["m0"]
        closed = now()
        members[0].close()
        restarted = Member("m0.again", brokers[0], topic, group, scenario)
        members.append(restarted)
        if not wait(lambda: owners().get("m0.again"), 20):
            violations["static_assignment_changed"].append("the restarted static member got no partitions in 20 s")
        figures["static_rejoin_s"] = round(now() - closed, 3)
        time.sleep(5)  # a rebalance of the others, if any, shows within a heartbeat or two
        again = [e for e in journal.ownership if e[0] == "m0.again" and e[1] == "assign"]
        if again and set(again[0][2]) != before:
            violations["static_assignment_changed"].append(f"before {sorted(before)}, after {sorted(again[0][2])}")
        for member, kind, parts, at in list(journal.ownership):
            if member in ("m1", "m2") and at is not None and at >= closed:
                violations["static_rebalanced"].append(f"{member} {kind} {parts} at {at} (m0 closed at {closed})")
    else:
        say("kill-now")
        if not parent.expect("killed", 90):
            violations["protocol"].append("the parent never said killed")
        killed = now()
        figures["killed_at_s"] = killed

        def recovered():
            with journal.lock:
                consumed = {p for _, p, _, at in journal.processed if at > killed}
                committed = {p for _, p, _, at in journal.commits if at > killed}
            return consumed == committed == set(range(partitions))

        if wait(recovered, 60):
            figures["failover_s"] = round(now() - killed, 3)
            say(f"recovered {figures['failover_s']}")
        else:
            violations["protocol"].append("the group did not consume and commit on every partition within 60 s of the kill")
            say("not-recovered")
        if not parent.expect("restarted", 90):
            violations["protocol"].append("the parent never said restarted")
        time.sleep(4)  # consuming with the killed broker back

    undelivered = producer.stop()
    violations["produce_failed"] += producer.failed + ([f"{undelivered} undelivered"] if undelivered else [])
    ends = {p: 0 for p in range(partitions)}
    for p, offset in producer.delivered:
        ends[p] = max(ends[p], offset + 1)

    def drained():
        with journal.lock:
            done = {p: 0 for p in range(partitions)}
            for _, p, offset, _ in journal.commits:
                done[p] = max(done[p], offset)
        return all(done[p] >= ends[p] for p in range(partitions))

    if not wait(drained, 60):
        violations["not_committed"].append("the group did not commit the log end on every partition within 60 s")
    for member in members:
        if not member.stopping.is_set():
            member.close()
    closed_at = now()

    seen = check(violations, partitions, ends, closed_at)
    for p, offset in producer.delivered:
        if (p, offset) not in seen:
            violations["unprocessed"].append(f"{p}/{offset}")
    with journal.lock:
        last = {p: max((c[2] for c in journal.commits if c[1] == p), default=-1) for p in range(partitions)}
    violations["not_committed"] += [f"partition {p}: last acknowledged commit {last[p]}, log end {ends[p]}" for p in range(partitions) if last[p] != ends[p]]

    # A new member of the group reads nothing: it starts at the committed offsets, the log end.
    fresh = Consumer({
        "bootstrap.servers": brokers[-1], "group.id": group, "session.timeout.ms": SESSION_MS, "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    assigned = set()

    def assign(consumer, ps):
        assigned.clear()
        assigned.update(tp.partition for tp in ps)

    fresh.subscribe([topic], on_assign=assign, on_revoke=lambda consumer, ps: assigned.clear())
    read = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(assigned) < partitions:
        message = fresh.poll(0.2)
        if message is not None and message.error() is None:
            read += 1
    whole = len(assigned) == partitions
    # Nothing can show that no record will come; three seconds of fetching at the committed offsets
    # (librdkafka fetches within milliseconds of its assignment) would bring any left below the end.
    settle = time.monotonic() + 3
    while whole and time.monotonic() < settle:
        message = fresh.poll(0.2)
        if message is not None and message.error() is None:
            read += 1
    committed = []
    try:
        committed = [(tp.partition, tp.offset) for tp in fresh.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)]
    except Exception as error:  # noqa: BLE001 - reported as a violation below
        committed = [str(error)]
    fresh.close()
    if not whole:
        violations["new_member_read"].append(f"the new member was not assigned all {partitions} partitions in 30 s: {sorted(assigned)}")
    if read:
        violations["new_member_read"].append(f"the new member read {read} records; the group's committed offsets {committed}, log ends {ends}")
    if committed != [(p, ends[p]) for p in range(partitions)]:
        violations["not_committed"].append(f"the new member's coordinator answers committed offsets {committed}, log ends {ends}")

    violations["fatal"] += journal.fatal
    with journal.lock:
        repeats = len(journal.processed) - len(seen)
        counts = {"delivered": len(producer.delivered), "processed": len(journal.processed), "reprocessed": repeats,
                  "commits": len(journal.commits), "ownership_events": len(journal.ownership), "client_errors": len(journal.errors)}
        ownership = [f"{at} {member} {kind} {parts}" for member, kind, parts, at in journal.ownership]
        errors = journal.errors[:20]
    for key in violations:
        violations[key] = violations[key][:20]
    say(json.dumps({"scenario": scenario, "client": version()[0], "violations": violations, "figures": figures,
                    "ends": {str(p): e for p, e in ends.items()}, "counts": counts, "ownership": ownership[:60], "errors": errors}))


if __name__ == "__main__":
    main()
