"""Confluent's own Python client on the other side of evkit's `wire: confluent` topics.

    confluent_interop.py produce BOOTSTRAP REGISTRY TOPIC SCHEMA_FILE COUNT IDENTITY
        JSONSerializer (auto-registering the schema with the registry at REGISTRY) writes COUNT
        todo-created events to TOPIC, with the identity and request id headers; prints
        {"produced": COUNT}.
    confluent_interop.py consume BOOTSTRAP REGISTRY TOPIC COUNT
        JSONDeserializer (fetching the writer's schema by the framed id) reads COUNT messages;
        prints one JSON line per message: the event, the framed schema id and the key.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    mode, bootstrap, registry, topic = sys.argv[1:5]
    client = SchemaRegistryClient({"url": registry})
    ctx = SerializationContext(topic, MessageField.VALUE)
    if mode == "produce":
        schema_file, count, identity = sys.argv[5], int(sys.argv[6]), sys.argv[7]
        with open(schema_file) as f:
            schema = f.read()
        serialize = JSONSerializer(schema, client, conf={"auto.register.schemas": True})
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for i in range(count):
            event = {
                "id": i + 1,
                "org_id": "12345",
                "title": f"from confluent-kafka {i}",
                "created_at": "2026-11-01T09:30:00Z",
            }
            producer.produce(
                topic,
                key=b"12345",
                value=serialize(event, ctx),
                headers=[("x-rh-identity", identity), ("x-rh-insights-request-id", f"req-py-{i}")],
            )
        left = producer.flush(30)
        if left:
            sys.exit(f"{left} message(s) not delivered")
        print(json.dumps({"produced": count}), flush=True)
    elif mode == "consume":
        count = int(sys.argv[5])
        deserialize = JSONDeserializer(None, schema_registry_client=client)
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"confluent-interop-{topic}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        got, deadline = 0, time.time() + 60
        while got < count and time.time() < deadline:
            m = consumer.poll(1.0)
            if m is None:
                continue
            if m.error():
                sys.exit(f"consume error: {m.error()}")
            event = deserialize(m.value(), ctx)
            schema_id = int.from_bytes(m.value()[1:5], "big")
            print(json.dumps({"event": event, "schema_id": schema_id, "key": m.key().decode()}), flush=True)
            got += 1
        consumer.close()
        if got < count:
            sys.exit(f"read {got} of {count} messages")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
