"""kafka-python as a reader of msgwire's Kafka event log.

    py_kafka_consume.py BOOTSTRAP TOPIC GROUP COUNT [TIMEOUT_S]

Joins consumer group GROUP on TOPIC from the earliest offset, decodes every value
with `msgpack.unpackb(b, raw=False)` (as a Python consumer of the events topic
does) and prints one JSON line per record: {"partition", "offset", "key",
"timestamp", "value"}. Stops after COUNT records (exit 0) or when TIMEOUT_S (default
60) pass first (exit 1, with what it got on stderr).
"""
import json
import sys
import time

import msgpack
from kafka import KafkaConsumer


def main() -> int:
    bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        value_deserializer=lambda b: msgpack.unpackb(b, raw=False),
        key_deserializer=lambda b: b.decode("utf-8") if b is not None else None,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        consumer_timeout_ms=1000,
    )
    got = 0
    deadline = time.monotonic() + timeout_s
    try:
        while got < count and time.monotonic() < deadline:
            for message in consumer:
                line = {
                    "partition": message.partition,
                    "offset": message.offset,
                    "key": message.key,
                    "timestamp": message.timestamp,
                    "value": message.value,
                }
                print(json.dumps(line), flush=True)
                got += 1
                if got >= count:
                    break
    finally:
        consumer.close()
    if got < count:
        print(f"py_kafka_consume: got {got} of {count} records in {timeout_s}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
