"""The issue-23 compaction scenario through confluent-kafka, for SamsaBrokerTests (CompactionProcessTests).

    compaction_process.py BOOTSTRAP TOPIC create
    compaction_process.py BOOTSTRAP TOPIC produce FIRST COUNT KEY_FROM KEY_TO TOMBSTONES
    compaction_process.py BOOTSTRAP TOPIC consume

create: makes TOPIC (one partition) with cleanup.policy=compact, segment.bytes=262144, segment.ms=1000,
min.cleanable.dirty.ratio=0.01, delete.retention.ms=2000.
produce: COUNT updates, update n (from FIRST) setting key-(KEY_FROM + n % (KEY_TO - KEY_FROM)) to value-n,
then tombstones for key-0 ... key-(TOMBSTONES-1); acks=all. Prints {"produced": COUNT + TOMBSTONES}.
consume: reads partition 0 from the beginning to the high watermark and prints
{"records": [[offset, key, value or null], ...]} (offsets as text).
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CONFIGS = {
    "cleanup.policy": "compact", "segment.bytes": "262144", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "2000",
}


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=CONFIGS)]).values():
        future.result(timeout=30)
    return {"created": topic}


def produce(bootstrap, topic, first, count, key_from, key_to, tombstones):
    failures = []
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "batch.num.messages": 2000, "queue.buffering.max.messages": 500000,
    })

    def delivered(error, _message):
        if error is not None:
            failures.append(error.name())

    for n in range(first, first + count):
        while True:
            try:
                producer.produce(topic, key=f"key-{key_from + n % (key_to - key_from)}".encode(), value=f"value-{n}".encode(), partition=0, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    for k in range(tombstones):
        producer.produce(topic, key=f"key-{k}".encode(), value=None, partition=0, on_delivery=delivered)
    if producer.flush(60) != 0:
        raise RuntimeError("undelivered records")
    if failures:
        raise RuntimeError(f"{len(failures)} records failed: {failures[:3]}")
    return {"produced": count + tombstones}


def consume(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "enable.auto.commit": False, "enable.partition.eof": True})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    consumer.assign([TopicPartition(topic, 0, 0)])
    records = []
    deadline = time.time() + 40
    while time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                if message.offset() >= high:
                    break
                continue
            raise RuntimeError(str(message.error()))
        value = message.value()
        records.append([str(message.offset()), message.key().decode(), None if value is None else value.decode()])
    consumer.close()
    return {"records": records, "high_watermark": high}


def main():
    bootstrap, topic, phase = sys.argv[1], sys.argv[2], sys.argv[3]
    if phase == "create":
        outcome = create(bootstrap, topic)
    elif phase == "produce":
        first, count, key_from, key_to, tombstones = (int(argument) for argument in sys.argv[4:9])
        outcome = produce(bootstrap, topic, first, count, key_from, key_to, tombstones)
    else:
        outcome = consume(bootstrap, topic)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
