"""Drives a Kafka-protocol broker with kafka-python, for SamsaBrokerTests.

    kafka_python_client.py BOOTSTRAP TOPIC COUNT COMPRESSION [REPLICATION_FACTOR]

Creates TOPIC (admin client), produces COUNT records (acks=all; keyed and keyless alternate), then
consumes the partition from the beginning by assignment and prints one JSON object: the produced
offsets and the consumed records.
"""
import json
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def main():
    bootstrap, topic, count, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    replication = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=replication)])
    listed = sorted(admin.list_topics())
    admin.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
        compression_type=None if compression == "none" else compression, linger_ms=5)
    futures = []
    for index in range(count):
        key = f"key-{index % 3}".encode() if index % 2 == 0 else None
        futures.append(producer.send(topic, key=key, value=f"value-{index}".encode(), partition=0))
    offsets = [future.get(timeout=30).offset for future in futures]
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    records = []
    while len(records) < count:
        batch = consumer.poll(timeout_ms=5000)
        if not batch:
            break
        for message in batch.get(partition, []):
            records.append({
                "offset": message.offset,
                "key": message.key.decode() if message.key is not None else None,
                "value": message.value.decode(),
            })
    consumer.close()
    print(json.dumps({"topics": listed, "offsets": offsets, "end": end, "records": records}))


if __name__ == "__main__":
    main()
