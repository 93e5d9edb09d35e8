"""confluent-kafka's side of the data-directory round trips, for SamsaToolTests.DirectoryRoundTripTests.

    roundtrip_client.py consume BOOTSTRAP GROUP TOPIC[,TOPIC...] COUNT SETTLE_MS
        Joins GROUP (auto.offset.reset=earliest: a missing commit shows as a re-read from the start),
        polls until COUNT records arrived, then SETTLE_MS more to catch any record past them (a
        re-read or a skipped commit), commits the offsets after the records it received
        (synchronously) and reads them back. Prints {"records", "committed", "errors"}.
    roundtrip_client.py create BOOTSTRAP TOPIC PARTITIONS CONFIGS_JSON
        CreateTopics with the configs. Prints {"errors"}.
    roundtrip_client.py describe BOOTSTRAP TOPIC
        DescribeConfigs of the topic. Prints {"configs": {name: value}, "errors"}.
    roundtrip_client.py alter BOOTSTRAP TOPIC CONFIGS_JSON
        IncrementalAlterConfigs: SET each config. Prints {"errors"}.
    roundtrip_client.py produce BOOTSTRAP TOPIC PARTITIONS FIRST COUNT
        acks=all, record i (value "TOPIC-i") to partition i % PARTITIONS. Prints {"delivered", "errors"}.
    roundtrip_client.py idempotent BOOTSTRAP TOPIC
        One idempotent producer (enable.idempotence=true) for the life of the process, across broker
        restarts on the same address. Each stdin line "PARTITION FIRST COUNT" produces COUNT records
        (values "idem-i") to PARTITION, flushes, and prints one JSON line {"delivered", "errors"}; the
        errors include every error callback so far that is not a broker being down. EOF ends it.

Every call has a deadline; a failure is reported in "errors", never hangs the test.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic


def consume(bootstrap, group, topics, count, settle_ms):
    errors = []
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
        "error_cb": lambda error: errors.append(f"error_cb: {error}"),
    })
    consumer.subscribe(topics.split(","))
    records = []
    deadline = time.monotonic() + 30
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            errors.append(f"poll: {message.error()}")
            continue
        records.append(message)
    if len(records) < count:
        errors.append(f"received {len(records)} of {count} records in 30 s")
    settle_until = time.monotonic() + settle_ms / 1000
    while time.monotonic() < settle_until:
        message = consumer.poll(0.1)
        if message is not None and not message.error():
            records.append(message)
    after = {}
    for message in records:
        key = (message.topic(), message.partition())
        after[key] = max(after.get(key, 0), message.offset() + 1)
    committed = {}
    if after:
        try:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in after.items()], asynchronous=False)
        except Exception as error:
            errors.append(f"commit: {error}")
    try:
        for partition in consumer.committed(list(consumer.assignment()), timeout=10):
            if partition.offset >= 0:
                committed.setdefault(partition.topic, {})[str(partition.partition)] = partition.offset
    except Exception as error:
        errors.append(f"committed: {error}")
    consumer.close()
    print(json.dumps({
        "records": [{"topic": m.topic(), "partition": m.partition(), "offset": m.offset(), "value": m.value().decode()} for m in records],
        "committed": committed, "errors": errors,
    }))


def create(bootstrap, topic, partitions, configs):
    errors = []
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=configs)]).values():
            future.result(timeout=15)
    except Exception as error:
        errors.append(f"create_topics: {error}")
    print(json.dumps({"errors": errors}))


def describe(bootstrap, topic):
    errors, configs = [], {}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource("topic", topic)
    try:
        entries = admin.describe_configs([resource], request_timeout=10)[resource].result(timeout=15)
        configs = {name: entry.value for name, entry in entries.items()}
    except Exception as error:
        errors.append(f"describe_configs: {error}")
    print(json.dumps({"configs": configs, "errors": errors}))


def alter(bootstrap, topic, configs):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    errors = []
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in configs.items()]
    try:
        for future in admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=entries)]).values():
            future.result(timeout=15)
    except Exception as error:
        errors.append(f"incremental_alter_configs: {error}")
    print(json.dumps({"errors": errors}))


def deliveries(producer, topic, records, errors):
    """Produces (partition, value) pairs, flushes, returns the deliveries."""
    delivered = []

    def report(error, message):
        if error is not None:
            errors.append(f"delivery: {error}")
        else:
            delivered.append({"partition": message.partition(), "offset": message.offset(), "value": message.value().decode()})

    for partition, value in records:
        producer.produce(topic, value=value, partition=partition, on_delivery=report)
    left = producer.flush(20)
    if left:
        errors.append(f"{left} not delivered in 20 s")
    return delivered


def produce(bootstrap, topic, partitions, first, count):
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 15000})
    records = [(i % partitions, f"{topic}-{i}") for i in range(first, first + count)]
    delivered = deliveries(producer, topic, records, errors)
    print(json.dumps({"delivered": delivered, "errors": errors}))


def idempotent(bootstrap, topic):
    callbacks = []

    def on_error(error):
        # The broker stopping between steps is expected: librdkafka reports its connections going down.
        if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) and not error.fatal():
            return
        callbacks.append(f"error_cb: {error} (fatal: {error.fatal()})")

    producer = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
        "message.timeout.ms": 20000, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
        "error_cb": on_error,
    })
    for line in sys.stdin:
        partition, first, count = (int(word) for word in line.split())
        errors = []
        records = [(partition, f"idem-{i}") for i in range(first, first + count)]
        delivered = deliveries(producer, topic, records, errors)
        producer.poll(0)
        print(json.dumps({"delivered": delivered, "errors": errors + callbacks}), flush=True)
    producer.flush(5)


def main(argv):
    mode = argv[1]
    if mode == "consume":
        consume(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
    elif mode == "create":
        create(argv[2], argv[3], int(argv[4]), json.loads(argv[5]))
    elif mode == "describe":
        describe(argv[2], argv[3])
    elif mode == "alter":
        alter(argv[2], argv[3], json.loads(argv[4]))
    elif mode == "produce":
        produce(argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]))
    elif mode == "idempotent":
        idempotent(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
