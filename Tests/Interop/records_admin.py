"""DeleteRecords (and kafka-python's describe_log_dirs) through a real client's admin API, for
SamsaBrokerTests (RecordsAdminClientTests).

    records_admin.py BOOTSTRAP TOPIC [REPLICATION_FACTOR]

Creates TOPIC (one partition, REPLICATION_FACTOR replicas, 1 unless given), produces 100 records value-0 ... value-99, deletes the records below
offset 40 with the admin client, then a new group consumer with auto.offset.reset=earliest reads what is
left; also deletes past the high watermark (refused). Prints one JSON object: the client and version,
the low watermark answered, the first offset and the values consumed, the error of the refused deletion
and (kafka-python 3) the partition's size from describe_log_dirs.
"""
import json
import sys
import time

COUNT = 100
DELETE_BEFORE = 40


def confluent(bootstrap, topic, replicas):
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=replicas)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for index in range(COUNT):
        producer.produce(topic, value=f"value-{index}".encode(), partition=0)
    if producer.flush(30) != 0:
        raise RuntimeError("undelivered records")

    deleted = admin.delete_records([TopicPartition(topic, 0, DELETE_BEFORE)], request_timeout=30)
    low_watermark = list(deleted.values())[0].result(timeout=30).low_watermark
    try:
        list(admin.delete_records([TopicPartition(topic, 0, 10_000)], request_timeout=30).values())[0].result(timeout=30)
        refused = "none"
    except KafkaException as error:
        refused = error.args[0].name()

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"{topic}-readers", "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    first, values = None, []
    deadline = time.time() + 30
    while len(values) < COUNT - DELETE_BEFORE and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise RuntimeError(str(message.error()))
        first = message.offset() if first is None else first
        values.append(message.value().decode())
    consumer.close()
    return {"client": "confluent-kafka", "version": getattr(confluent_kafka, "__version__", None) or confluent_kafka.version()[0], "low_watermark": low_watermark, "first_offset": first,
            "values": values, "refused": refused}


def kafka_python(bootstrap, topic, replicas):
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, replicas)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for index in range(COUNT):
        producer.send(topic, value=f"value-{index}".encode(), partition=0)
    producer.flush(30)
    producer.close()

    deleted = admin.delete_records({TopicPartition(topic, 0): DELETE_BEFORE})
    low_watermark = list(deleted.values())[0]["low_watermark"]
    try:
        admin.delete_records({TopicPartition(topic, 0): 10_000})
        refused = "none"
    except KafkaError as error:
        refused = type(error).__name__
    size = None
    if kafka.__version__.startswith("3"):
        for broker in admin.describe_log_dirs(topic_partitions={topic: [0]}):
            for log_dir in broker["log_dirs"]:
                for named in log_dir["topics"]:
                    for partition in named["partitions"]:
                        size = partition["partition_size"]
    admin.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-readers", auto_offset_reset="earliest", enable_auto_commit=False)
    first, values = None, []
    deadline = time.time() + 30
    while len(values) < COUNT - DELETE_BEFORE and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                first = record.offset if first is None else first
                values.append(record.value.decode())
    consumer.close()
    return {"client": "kafka-python", "version": kafka.__version__, "low_watermark": low_watermark, "first_offset": first, "values": values,
            "refused": refused, "partition_size": size}


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    replicas = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    try:
        import confluent_kafka  # noqa: F401
        outcome = confluent(bootstrap, topic, replicas)
    except ImportError:
        outcome = kafka_python(bootstrap, topic, replicas)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
