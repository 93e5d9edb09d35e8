"""A kafka-python consumer group against a Kafka-protocol broker, for SamsaBrokerTests.

    kafka_python_group.py BOOTSTRAP TOPIC

Creates TOPIC with 2 partitions and produces 10 records; a group member consumes them all and
commits; 5 more records are produced; a new member of the same group must resume exactly at the
commit. Then two members split the partitions, and when one leaves the other gets both.
Prints one JSON object with what each step saw.
"""
import json
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def produce(bootstrap, topic, values):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    for index, value in enumerate(values):
        producer.send(topic, value=value.encode(), partition=index % 2)
    producer.flush()
    producer.close()


def consume(consumer, count, timeout=20):
    seen = []
    deadline = time.time() + timeout
    while len(seen) < count and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            seen += [record.value.decode() for record in records]
    return seen


def member(bootstrap, topic, group, **options):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=30000, heartbeat_interval_ms=500, **options)
    consumer.subscribe([topic])
    return consumer


class Poller(threading.Thread):
    """Polls one consumer on its own thread (a kafka-python consumer joins, heartbeats and rebalances
    only while it is polled, and a poll may block until the group's rebalance completes)."""

    def __init__(self, consumer):
        super().__init__(daemon=True)
        self.consumer = consumer
        self.lock = threading.Lock()
        self.stopping = False
        self.assigned = []
        self.error = None

    def run(self):
        try:
            while not self.stopping:
                with self.lock:
                    if self.stopping:
                        break
                    self.consumer.poll(timeout_ms=100)
                    self.assigned = sorted(p.partition for p in self.consumer.assignment())
        except Exception as error:  # a poll that raised ends the member: report it, not a stale assignment
            self.error = repr(error)

    def close(self):
        with self.lock:
            self.stopping = True
            self.consumer.close()
        self.join()


def wait_for_split(pollers, timeout=30):
    """Waits until every member has partitions and together they hold both, once each."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assigned = [poller.assigned for poller in pollers]
        if all(assigned) and sorted(sum(assigned, [])) == [0, 1]:
            break
        time.sleep(0.05)
    return [poller.assigned for poller in pollers]


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    produce(bootstrap, topic, [f"first-{i}" for i in range(10)])

    first = member(bootstrap, topic, "readers")
    first_seen = consume(first, 10)
    first.commit()
    committed = {p: first.committed(TopicPartition(topic, p)) for p in (0, 1)}
    first.close()

    produce(bootstrap, topic, [f"second-{i}" for i in range(5)])
    second = member(bootstrap, topic, "readers")
    second_seen = consume(second, 5)
    second.commit()

    second_poller = Poller(second)
    second_poller.start()
    third = Poller(member(bootstrap, topic, "readers"))
    third.start()
    split = sorted(wait_for_split([second_poller, third]))
    third.close()
    after_leave = wait_for_split([second_poller])
    second_poller.close()
    groups = sorted([entry["group_id"], entry["group_state"]] for entry in admin.list_groups())
    admin.close()
    print(json.dumps({
        "first": sorted(first_seen), "committed": {str(k): v for k, v in committed.items()}, "second": sorted(second_seen),
        "split": split, "afterLeave": after_leave, "groups": groups,
        "pollErrors": [poller.error for poller in (second_poller, third) if poller.error],
    }))


if __name__ == "__main__":
    main()
