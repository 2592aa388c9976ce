"""Event schemas, validation, stationarity handling, feature extraction and windows.

Plain Python/numpy (plus pandas and statsmodels): no Faust, Kafka or InfluxDB here.

The stream agents use:

* :func:`parse_sensor_reading` / :func:`parse_connection_event` — raw bytes to a typed event
  or a :class:`RejectedEvent` with a :class:`RejectReason` code;
* :class:`SensorFeaturePipeline` — one per sensor, stateful, ``update_one`` /
  ``update_many`` / ``update_readings`` → :class:`FeatureVector` / :class:`FeatureBatch`,
  checkpointed with ``to_state`` / ``from_state``;
* :class:`ConnectionFeaturePipeline` — fitted on training connections, derives KDD traffic
  features of raw events (:class:`TrafficFeatureExtractor`) and scales / one-hot encodes;
* :func:`feature_table` / :func:`format_feature_table` — ``anomstream features``;
* :func:`read_nab_csv`, :func:`read_kdd`, :func:`read_csv_events` — dataset readers.
"""

from windowing.calendar import CalendarFeatures, utc_offsets
from windowing.connection import OTHER, CategoryEncoder, ConnectionFeaturePipeline
from windowing.differencing import Differencer, SeasonalDifferencer
from windowing.features import FeatureBatch, FeatureVector, jsonable
from windowing.kdd import (
    CATEGORICAL_FIELDS,
    HEAVY_TAILED_FIELDS,
    INTRINSIC_FIELDS,
    KDD_FIELDS,
    NUMERIC_FIELDS,
    TRAFFIC_FIELDS,
)
from windowing.readers import epoch_seconds, read_csv_events, read_kdd, read_nab_csv
from windowing.resample import Alignment, AlignmentBatch, CadenceAligner, infer_cadence
from windowing.scaling import RangeScaler, RobustScaler, rolling_robust_scale
from windowing.schemas import (
    ConnectionEvent,
    InputLimits,
    RejectedEvent,
    RejectReason,
    SensorReading,
    SensorSpec,
    parse_connection_event,
    parse_sensor_reading,
    parse_timestamp,
)
from windowing.sensor import SensorFeaturePipeline
from windowing.slices import (
    Slice,
    SlidingWindow,
    TimeTumblingWindow,
    TumblingWindow,
    WindowBatch,
    sliding_windows,
    tumbling_windows,
)
from windowing.stationarity import (
    StationarityDecision,
    StationarityMonitor,
    adf_test,
    check_stationarity,
)
from windowing.table import (
    FORMATS,
    connection_feature_table,
    feature_table,
    format_feature_table,
    sensor_feature_table,
)
from windowing.traffic import KeyedTimeWindow, RecentConnections, TrafficFeatureExtractor

__all__ = [
    "CATEGORICAL_FIELDS",
    "FORMATS",
    "HEAVY_TAILED_FIELDS",
    "INTRINSIC_FIELDS",
    "KDD_FIELDS",
    "NUMERIC_FIELDS",
    "OTHER",
    "TRAFFIC_FIELDS",
    "Alignment",
    "AlignmentBatch",
    "CadenceAligner",
    "CalendarFeatures",
    "CategoryEncoder",
    "ConnectionEvent",
    "ConnectionFeaturePipeline",
    "Differencer",
    "FeatureBatch",
    "FeatureVector",
    "InputLimits",
    "KeyedTimeWindow",
    "RangeScaler",
    "RecentConnections",
    "RejectReason",
    "RejectedEvent",
    "RobustScaler",
    "SeasonalDifferencer",
    "SensorFeaturePipeline",
    "SensorReading",
    "SensorSpec",
    "Slice",
    "SlidingWindow",
    "StationarityDecision",
    "StationarityMonitor",
    "TimeTumblingWindow",
    "TrafficFeatureExtractor",
    "TumblingWindow",
    "WindowBatch",
    "adf_test",
    "check_stationarity",
    "connection_feature_table",
    "epoch_seconds",
    "feature_table",
    "format_feature_table",
    "infer_cadence",
    "jsonable",
    "parse_connection_event",
    "parse_sensor_reading",
    "parse_timestamp",
    "read_csv_events",
    "read_kdd",
    "read_nab_csv",
    "rolling_robust_scale",
    "sensor_feature_table",
    "sliding_windows",
    "tumbling_windows",
    "utc_offsets",
]
