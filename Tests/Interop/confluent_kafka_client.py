"""confluent-kafka (librdkafka 2.16) against a Kafka-protocol broker, for SamsaBrokerTests.

    confluent_kafka_client.py BOOTSTRAP TOPIC COUNT COMPRESSION IDEMPOTENT

Creates TOPIC (admin), produces COUNT records (acks=all), then a group consumer reads them from the
beginning and commits; prints one JSON object with the delivered offsets, the consumed values and
the committed offset.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, topic, count, compression, idempotent = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "true"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(timeout=30)

    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "compression.type": compression,
        "enable.idempotence": idempotent, "linger.ms": 5,
    })
    delivered = []

    def report(error, message):
        if error is not None:
            raise RuntimeError(str(error))
        delivered.append(message.offset())

    for index in range(count):
        producer.produce(topic, value=f"value-{index}".encode(), key=f"key-{index % 4}".encode(), partition=0, on_delivery=report)
        producer.poll(0)
    if producer.flush(30) != 0:
        raise RuntimeError("undelivered records")

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}-readers", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    values = []
    deadline = time.time() + 30
    while len(values) < count and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise RuntimeError(str(message.error()))
        values.append(message.value().decode())
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    consumer.close()
    print(json.dumps({"delivered": sorted(delivered), "values": values, "committed": committed}))


if __name__ == "__main__":
    main()
