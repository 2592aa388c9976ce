"""Event schemas, validation, stationarity handling, feature extraction and windows.

Plain Python/numpy: no Faust, Kafka or InfluxDB here.
"""

from windowing.schemas import (
    RejectedEvent,
    RejectReason,
    SensorReading,
    parse_sensor_reading,
    parse_timestamp,
)

__all__ = [
    "RejectReason",
    "RejectedEvent",
    "SensorReading",
    "parse_sensor_reading",
    "parse_timestamp",
]
