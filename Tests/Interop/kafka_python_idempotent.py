"""kafka-python's default producer (idempotent, acks=all) against a Kafka-protocol broker.

    kafka_python_idempotent.py BOOTSTRAP TOPIC COUNT

Prints the produced offsets and the values consumed back as JSON.
"""
import json
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    futures = [producer.send(topic, value=f"value-{i}".encode(), partition=0) for i in range(count)]
    offsets = [future.get(timeout=30).offset for future in futures]
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = []
    while len(values) < count:
        batch = consumer.poll(timeout_ms=5000)
        if not batch:
            break
        values += [message.value.decode() for message in batch.get(partition, [])]
    consumer.close()
    print(json.dumps({"offsets": offsets, "values": values}))


if __name__ == "__main__":
    main()
