"""Create topics in `evkit dev` through kafka-python's admin client, a Kafka protocol
implementation independent of librdkafka, and read their partitions back.
Usage: kafka_python_admin.py BOOTSTRAP TOPIC PARTITIONS

Prints `created TOPIC partitions=N`, then `exists` when a second create is refused with
TopicAlreadyExistsError. Pinned to the protocol of Kafka 2.3, as kafka_python_roundtrip.py is.
"""
import sys
import time

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
API = (2, 3)

admin = KafkaAdminClient(bootstrap_servers=bootstrap, api_version=API, request_timeout_ms=15000)
admin.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)])
consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=API)
deadline = time.time() + 30
found = None
while time.time() < deadline:
    found = consumer.partitions_for_topic(topic)
    if found:
        break
    time.sleep(0.2)
print(f"created {topic} partitions={len(found or [])}")
try:
    admin.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)])
    print("created twice")
except TopicAlreadyExistsError:
    print("exists")
admin.close()
consumer.close()
