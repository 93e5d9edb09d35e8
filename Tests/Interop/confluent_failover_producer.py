"""confluent-kafka producing through a leader failover, for SamsaBrokerTests.

    confluent_failover_producer.py BOOTSTRAP TOPIC COUNT

Produces COUNT records "value-<n>" to partition 0 of an existing TOPIC with acks=all and idempotence,
in small paced bursts (so a broker can be killed mid-run), and prints one JSON object: the delivered
(value, offset) pairs and the delivery errors.
"""
import json
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 2,
        "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 1000,
    })
    delivered = []
    errors = []

    def report(error, message):
        if error is not None:
            errors.append(str(error))
        else:
            delivered.append([message.value().decode(), message.offset()])

    for index in range(count):
        producer.produce(topic, value=f"value-{index}".encode(), partition=0, on_delivery=report)
        if index % 20 == 19:
            producer.poll(0)
            time.sleep(0.02)
    remaining = producer.flush(60)
    print(json.dumps({"delivered": delivered, "errors": errors, "undelivered": remaining}))


if __name__ == "__main__":
    main()
