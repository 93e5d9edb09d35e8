"""confluent-kafka consumer groups through rebalances, for SamsaBrokerTests.GroupProtocolsInteropTests.

    group_protocols.py BOOTSTRAP SCENARIO TOPIC

SCENARIO is one of
  cooperative  three cooperative-sticky members join one after another, then one leaves (LeaveGroup);
  static       three static members (group.instance.id, cooperative-sticky); one is closed (a static
               member sends no LeaveGroup) and restarted within the session timeout;
  static-eager the same with the eager range assignor.
A producer writes to the topic's 6 partitions throughout. Every member's on_assign / on_revoke /
on_lost is logged against one shared clock (a lock and a sequence number), and ownership is checked at
each: a partition assigned to a member while another owns it is a violation. Prints one JSON object:
violations, records produced and not consumed, and for the static scenarios the restarted member's
partitions before and after and the callbacks the other members saw after the restart.
"""
import json
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 6
SESSION_MS = 10_000


class Ledger:
    """Who owns which partition, and every callback, on one clock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.owner = {}
        self.events = []
        self.violations = []
        self.consumed = set()

    def assigned(self, member, partitions):
        with self.lock:
            for partition in partitions:
                holder = self.owner.get(partition)
                if holder is not None and holder != member:
                    self.violations.append(f"partition {partition} assigned to {member} while {holder} owns it")
                self.owner[partition] = member
            self.events.append((len(self.events), member, "assign", sorted(partitions)))

    def revoked(self, member, partitions, kind):
        with self.lock:
            for partition in partitions:
                if self.owner.get(partition) == member:
                    del self.owner[partition]
            self.events.append((len(self.events), member, kind, sorted(partitions)))

    def owned(self, member):
        with self.lock:
            return sorted(p for p, holder in self.owner.items() if holder == member)

    def clock(self):
        with self.lock:
            return len(self.events)


class Member:
    """One consumer polled by its own thread (its callbacks run there)."""

    def __init__(self, bootstrap, topic, group, name, ledger, assignor, instance=None):
        self.name, self.ledger = name, ledger
        config = {
            "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": True, "auto.commit.interval.ms": 200,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": assignor,
        }
        if instance:
            config["group.instance.id"] = instance
        self.consumer = Consumer(config)
        self.consumer.subscribe(
            [topic],
            on_assign=lambda _, parts: ledger.assigned(name, [p.partition for p in parts]),
            on_revoke=lambda _, parts: ledger.revoked(name, [p.partition for p in parts], "revoke"),
            on_lost=lambda _, parts: ledger.revoked(name, [p.partition for p in parts], "lost"))
        self.running = True
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while self.running:
                message = self.consumer.poll(0.1)
                if message is None:
                    continue
                if message.error():
                    continue
                with self.ledger.lock:
                    self.ledger.consumed.add((message.partition(), message.offset()))
            self.consumer.close()
        except Exception as error:  # reported, not raised in a thread
            self.error = f"{self.name}: {error!r}"

    def close(self):
        self.running = False
        self.thread.join(30)


def until(condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def balanced(ledger, names):
    """Every partition owned, each listed member owning its share."""
    owned = {name: ledger.owned(name) for name in names}
    total = sum(len(parts) for parts in owned.values())
    return total == PARTITIONS and all(len(parts) == PARTITIONS // len(names) for parts in owned.values())


def main():
    bootstrap, scenario, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)

    produced, producing = set(), [True]

    def produce():
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})

        def report(error, message):
            if error is None:
                produced.add((message.partition(), message.offset()))

        index = 0
        while producing[0]:
            producer.produce(topic, value=f"v{index}".encode(), partition=index % PARTITIONS, on_delivery=report)
            producer.poll(0)
            index += 1
            time.sleep(0.002)
        producer.flush(30)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    ledger = Ledger()
    group = f"{topic}-group"
    version = confluent_kafka.version()  # a string in 2.16, (string, int) before
    result = {"client": version if isinstance(version, str) else version[0], "librdkafka": confluent_kafka.libversion()[0], "scenario": scenario}
    members = {}
    if scenario == "cooperative":
        for name in ["m1", "m2", "m3"]:
            members[name] = Member(bootstrap, topic, group, name, ledger, "cooperative-sticky")
            until(lambda: balanced(ledger, list(members)), f"{len(members)} members balanced")
        members.pop("m2").close()
        until(lambda: balanced(ledger, list(members)), "two members balanced after m2 left")
    else:
        assignor = "cooperative-sticky" if scenario == "static" else "range"
        for name in ["s1", "s2", "s3"]:
            members[name] = Member(bootstrap, topic, group, name, ledger, assignor, instance=name)
            until(lambda: balanced(ledger, list(members)), f"{len(members)} static members balanced")
        before = ledger.owned("s2")
        restart_clock = ledger.clock()
        closed_at = time.time()
        members["s2"].close()
        members["s2"] = Member(bootstrap, topic, group, "s2", ledger, assignor, instance="s2")
        until(lambda: len(ledger.owned("s2")) > 0, "the restarted static member assigned")
        result["restarted_within_ms"] = int((time.time() - closed_at) * 1000)
        # Long enough for the others to hear of any rebalance (several heartbeats).
        time.sleep(3)
        result["before"], result["after"] = before, ledger.owned("s2")
        with ledger.lock:
            result["others_after_restart"] = [e for e in ledger.events[restart_clock:] if e[1] != "s2"]
    time.sleep(1)
    producing[0] = False
    producer.join(60)
    until(lambda: produced <= ledger.consumed, "everything produced consumed", timeout=60)
    for member in members.values():
        member.close()
    errors = [m.error for m in members.values() if m.error]
    result.update({
        "violations": ledger.violations, "produced": len(produced), "missing": len(produced - ledger.consumed),
        "errors": errors, "events": ledger.events,
    })
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:
        print(json.dumps({"error": repr(error)}))
        sys.exit(0)
