"""confluent-kafka producing to a cluster until told to stop, then consuming everything, for
SamsaBrokerTests.EnsembleFailoverTests and ZooKeeperOutageProcessTests.

    confluent_cluster_producer.py BOOTSTRAP TOPIC PARTITIONS

Produces records with unique values "r-<n>" round-robin over the partitions of an existing TOPIC with
acks=all and idempotence, paced (about 1,000 a second), until stdin closes. Then it flushes, reads every partition from offset 0 to
its end with a consumer, and prints one JSON object: the delivered [partition, offset, value, time]
entries (time: the wall-clock time of the delivery report, for stalls),
the delivery errors, how many were left undelivered, and the consumed [partition, offset, value]
triples.
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
        # Retries until a failover is over; a delivery error is a failure of the test.
        "message.timeout.ms": 120000, "request.timeout.ms": 30000,
        # Idempotence state changes (epochs, drains, retries) on stderr, for a failure's diagnosis.
        "debug": "eos",
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
        for _ in range(10):
            producer.produce(topic, value=f"r-{index}".encode(), partition=index % partitions, on_delivery=report)
            index += 1
        producer.poll(0)
        time.sleep(0.01)
    undelivered = producer.flush(120)

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "ensemble-check", "enable.auto.commit": False,
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
