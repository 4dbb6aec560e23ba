"""Produce to and consume from `evkit dev` with kafka-python, a Kafka protocol implementation
independent of librdkafka. Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC IDENTITY

librdkafka's mock cluster answers ApiVersions up to v2 only, so the client is pinned to the
protocol of Kafka 2.3 (kafka-python would otherwise open with ApiVersions v4 and fail to decode
the broker's v0 error reply).
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer

bootstrap, topic, identity = sys.argv[1], sys.argv[2], sys.argv[3]
API = (2, 3)

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", api_version=API)
payload = {"id": 31, "org_id": "31337", "title": "from kafka-python", "created_at": "2026-11-01T09:30:00Z"}
meta = producer.send(
    topic,
    key=b"31337",
    value=json.dumps(payload).encode(),
    headers=[("x-rh-identity", identity.encode()), ("x-rh-insights-request-id", b"kafka-python-1")],
).get(timeout=30)
producer.flush()
print(f"produced partition={meta.partition} offset={meta.offset}")

consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    auto_offset_reset="earliest",
    group_id=None,
    api_version=API,
)
# Poll until both messages arrived (the test produced exactly two), up to a minute: a fixed
# idle timeout failed when a loaded machine made the first metadata and fetch round trips slow.
deadline = time.monotonic() + 60
titles = []
while len(titles) < 2 and time.monotonic() < deadline:
    for records in consumer.poll(timeout_ms=1000).values():
        titles += [json.loads(m.value)["title"] for m in records if m.value.startswith(b"{")]
print("consumed " + json.dumps(sorted(titles)))
