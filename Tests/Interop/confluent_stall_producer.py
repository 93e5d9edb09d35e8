"""confluent-kafka producing to a cluster until told to stop, then consuming everything, for
SamsaBrokerTests.ZooKeeperOutageProcessTests: as confluent_cluster_producer.py, with each delivery's
wall-clock time, so the test can find the longest stall of each partition in a window.

    confluent_stall_producer.py BOOTSTRAP TOPIC PARTITIONS

Prints one JSON object: the delivered [partition, offset, value, time] entries, the delivery errors,
how many were left undelivered, and the consumed [partition, offset, value] triples.
"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def main():
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
        "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 1000,
        "message.timeout.ms": 180000, "request.timeout.ms": 30000,
    })
    delivered = []
    errors = []

    def report(error, message):
        if error is not None:
            errors.append(f"{message.partition()}: {error}")
        else:
            delivered.append([message.partition(), message.offset(), message.value().decode(), time.time()])

    stop = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    index = 0
    while not stop.is_set():
        for _ in range(6):
            producer.produce(topic, value=f"r-{index}".encode(), partition=index % partitions, on_delivery=report)
            index += 1
        producer.poll(0)
        time.sleep(0.01)
    undelivered = producer.flush(180)

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "outage-check", "enable.auto.commit": False,
        "enable.partition.eof": True, "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    consumed = []
    ended = set()
    deadline = time.monotonic() + 120
    while len(ended) < partitions and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                ended.add(message.partition())
            else:
                errors.append(f"consume {message.partition()}: {message.error()}")
            continue
        ended.discard(message.partition())
        consumed.append([message.partition(), message.offset(), message.value().decode()])
    consumer.close()
    if len(ended) < partitions:
        errors.append(f"consume: only partitions {sorted(ended)} reached their end")
    print(json.dumps({"delivered": delivered, "errors": errors, "undelivered": undelivered, "consumed": consumed}))


if __name__ == "__main__":
    main()
