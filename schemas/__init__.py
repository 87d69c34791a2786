"""Avro schemas (``*.avsc``, one per record and version), the codec and the topic registry.

Pure: no Kafka, database or network imports here (see ``tests/unit/test_architecture.py``).
"""
