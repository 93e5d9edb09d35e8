#!/usr/bin/env python3
"""Independent reference for Samsa's record batches: kafka-python's own RecordBatch v2 code.

  generate DIR   write kafka-python-<codec>.batch (one batch built by kafka-python's
                 DefaultRecordBatchBuilder) and kafka-python-<codec>.json (what it holds)
                 for codecs none, lz4 and zstd
  decode FILE    read the batches in FILE with kafka-python's DefaultRecordBatch, check
                 their CRCs, and print what they hold as JSON (same shape as the .json files)

Bytes are written as hex strings, null as null, so the JSON compares exactly.
"""
import json
import os
import struct
import sys

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

CODECS = {"none": 0, "lz4": 3, "zstd": 4}
PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE = 4242, 3, 100
BASE_OFFSET, LEADER_EPOCH = 1000, 7


def hexify(b):
    return None if b is None else bytes(b).hex()


def golden_records():
    """Keys, null keys, null values, empty bytes, headers (with null values), binary data,
    multi-byte varint lengths, and timestamps that go backwards as well as forwards."""
    records = []
    base_ts = 1_700_000_000_000
    for i in range(40):
        key = None if i % 7 == 3 else f"user-{i % 5}".encode()
        if i == 5:
            key = b""
        value = json.dumps({"id": i, "action": ["view", "click", "buy"][i % 3],
                            "path": f"/products/{i * 37 % 101}", "note": "samsa golden " * (i % 4)}).encode()
        if i % 11 == 10:
            value = None  # tombstone
        if i == 6:
            value = bytes(range(256))
        if i == 7:
            value = ("x" * 300 + "y" * 300).encode()
        headers = []
        if i % 4 == 0:
            headers = [("trace-id", f"t-{i}".encode()), ("empty", None)]
        if i == 8:
            headers = [("ünïcode", b"\x00\xff"), ("", b"")]
        ts = base_ts + i * 1000 - (5000 if i == 9 else 0)
        records.append({"offset": i, "timestamp": ts, "key": key, "value": value, "headers": headers})
    return records


def describe(batch_fields, records):
    return {
        "batch": batch_fields,
        "records": [{"offset": r["offset"], "timestamp": r["timestamp"], "key": hexify(r["key"]),
                     "value": hexify(r["value"]),
                     "headers": [[k, hexify(v)] for k, v in r["headers"]]} for r in records],
    }


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, codec in CODECS.items():
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                            producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH,
                                            base_sequence=BASE_SEQUENCE, batch_size=1 << 20)
        records = golden_records()
        for r in records:
            builder.append(r["offset"], timestamp=r["timestamp"], key=r["key"], value=r["value"],
                           headers=r["headers"])
        data = bytearray(builder.build())
        # A log assigns these two; they lie outside the CRC.
        struct.pack_into(">q", data, 0, BASE_OFFSET)
        struct.pack_into(">i", data, 12, LEADER_EPOCH)
        batch = DefaultRecordBatch(bytes(data))
        assert batch.compression_type == codec, f"kafka-python did not compress with {name}"
        assert batch.validate_crc()
        for r in records:
            r["offset"] += BASE_OFFSET
        fields = {"baseOffset": BASE_OFFSET, "partitionLeaderEpoch": LEADER_EPOCH, "codec": name,
                  "producerId": PRODUCER_ID, "producerEpoch": PRODUCER_EPOCH, "baseSequence": BASE_SEQUENCE,
                  "recordCount": len(records), "maxTimestamp": batch.max_timestamp,
                  "baseTimestamp": batch.first_timestamp}
        with open(os.path.join(out_dir, f"kafka-python-{name}.batch"), "wb") as f:
            f.write(data)
        with open(os.path.join(out_dir, f"kafka-python-{name}.json"), "w") as f:
            json.dump(describe(fields, records), f, indent=1, sort_keys=True)
            f.write("\n")


def decode(path):
    data = open(path, "rb").read()
    batches = []
    pos = 0
    names = {v: k for k, v in CODECS.items()}
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        batch = DefaultRecordBatch(data[pos:pos + 12 + length])
        if not batch.validate_crc():
            raise SystemExit(f"CRC mismatch in batch at byte {pos}")
        records = [{"offset": r.offset, "timestamp": r.timestamp, "key": r.key, "value": r.value,
                    "headers": list(r.headers)} for r in batch]
        fields = {"baseOffset": batch.base_offset, "partitionLeaderEpoch": batch.leader_epoch,
                  "codec": names.get(batch.compression_type, str(batch.compression_type)),
                  "producerId": batch.producer_id, "producerEpoch": batch.producer_epoch,
                  "baseSequence": batch.base_sequence, "recordCount": batch.records_count,
                  "maxTimestamp": batch.max_timestamp, "baseTimestamp": batch.first_timestamp}
        batches.append(describe(fields, records))
        pos += 12 + length
    json.dump(batches, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("generate", "decode"):
        raise SystemExit(__doc__)
    generate(sys.argv[2]) if sys.argv[1] == "generate" else decode(sys.argv[2])
