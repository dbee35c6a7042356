"""The events domain: clickstream events from Kinesis -> bronze -> silver -> real-time gold."""
