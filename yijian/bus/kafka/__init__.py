"""The Kafka transport: the event log services use in production, and its topic admin."""

from yijian.bus.kafka.eventlog import KafkaEventLog
from yijian.bus.kafka.producer import PublishFailed
from yijian.bus.kafka.subscription import KafkaSubscription

__all__ = ["KafkaEventLog", "KafkaSubscription", "PublishFailed"]
