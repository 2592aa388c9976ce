"""The KDD Cup 1999 connection-record catalogue: field names, groups and value domains.

Names and order follow ``kddcup.names`` of the UCI KDD archive. The 41 fields fall into
three groups:

* **intrinsic** (fields 1-22): what one connection says about itself, known when it ends —
  the basic fields (``duration`` … ``urgent``) and the content fields (``hot`` …
  ``is_guest_login``);
* **time-based traffic** (23-31): statistics of the connections of the **last 2 seconds**
  to the same destination host (``count``, ``serror_rate`` …) or the same service
  (``srv_count``, ``srv_serror_rate`` …);
* **host-based traffic** (32-41): the same kind of statistics over the **last 100
  connections** (``dst_host_*``).

The traffic fields are *derived*: a raw connection (from a flow exporter) lacks them and
:mod:`windowing.traffic` computes them.

>>> len(KDD_FIELDS), len(INTRINSIC_FIELDS), len(TRAFFIC_FIELDS)
(41, 22, 19)
>>> KDD_FIELDS[:4]
('duration', 'protocol_type', 'service', 'flag')
>>> is_serror("S0"), is_rerror("REJ"), is_serror("SF")
(True, True, False)
"""

from __future__ import annotations

__all__ = [
    "BINARY_FIELDS",
    "CATEGORICAL_FIELDS",
    "HEAVY_TAILED_FIELDS",
    "HOST_TRAFFIC_FIELDS",
    "INTRINSIC_FIELDS",
    "INTRINSIC_NUMERIC_FIELDS",
    "KDD_FIELDS",
    "KNOWN_FLAGS",
    "KNOWN_PROTOCOLS",
    "NUMERIC_FIELDS",
    "RATE_FIELDS",
    "REJ_FLAGS",
    "SERROR_FLAGS",
    "TIME_TRAFFIC_FIELDS",
    "TRAFFIC_FIELDS",
    "is_rerror",
    "is_serror",
]

BASIC_FIELDS: tuple[str, ...] = (
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
)
CONTENT_FIELDS: tuple[str, ...] = (
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
)
#: Fields 1-22: known from the connection alone.
INTRINSIC_FIELDS: tuple[str, ...] = BASIC_FIELDS + CONTENT_FIELDS

#: Fields 23-31: over the connections of the last 2 seconds.
TIME_TRAFFIC_FIELDS: tuple[str, ...] = (
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
)
#: Fields 32-41: over the last 100 connections.
HOST_TRAFFIC_FIELDS: tuple[str, ...] = (
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
)
#: The derived fields a raw connection lacks.
TRAFFIC_FIELDS: tuple[str, ...] = TIME_TRAFFIC_FIELDS + HOST_TRAFFIC_FIELDS

#: All 41 fields, in file order.
KDD_FIELDS: tuple[str, ...] = INTRINSIC_FIELDS + TRAFFIC_FIELDS

CATEGORICAL_FIELDS: tuple[str, ...] = ("protocol_type", "service", "flag")
#: Symbolic in ``kddcup.names`` but 0/1 in the data: kept as numbers, validated as 0 or 1.
BINARY_FIELDS: tuple[str, ...] = ("land", "logged_in", "is_host_login", "is_guest_login")
INTRINSIC_NUMERIC_FIELDS: tuple[str, ...] = tuple(
    f for f in INTRINSIC_FIELDS if f not in CATEGORICAL_FIELDS
)
#: The 38 numeric fields, in file order.
NUMERIC_FIELDS: tuple[str, ...] = tuple(f for f in KDD_FIELDS if f not in CATEGORICAL_FIELDS)
#: Fractions: validated to lie in [0, 1].
RATE_FIELDS: tuple[str, ...] = tuple(f for f in KDD_FIELDS if f.endswith("_rate"))
#: Counts and sizes spanning orders of magnitude: ``log1p`` before scaling, so one 600 MB
#: transfer does not squash every other connection to 0.
HEAVY_TAILED_FIELDS: tuple[str, ...] = (
    "duration",
    "src_bytes",
    "dst_bytes",
    "hot",
    "num_failed_logins",
    "num_compromised",
    "num_root",
    "num_file_creations",
    "num_access_files",
    "count",
    "srv_count",
    "dst_host_count",
    "dst_host_srv_count",
)

KNOWN_PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp")
#: Bro/Zeek connection states seen in KDD.
KNOWN_FLAGS: tuple[str, ...] = (
    "SF", "S0", "S1", "S2", "S3", "REJ", "RSTO", "RSTR", "RSTOS0", "SH", "OTH",
)  # fmt: skip
#: Flags counted as SYN errors by the ``*serror_rate`` fields.
SERROR_FLAGS: frozenset[str] = frozenset({"S0", "S1", "S2", "S3"})
#: Flags counted as rejections by the ``*rerror_rate`` fields.
REJ_FLAGS: frozenset[str] = frozenset({"REJ"})


def is_serror(flag: str) -> bool:
    """Whether a connection with this ``flag`` counts as a SYN error."""
    return flag in SERROR_FLAGS


def is_rerror(flag: str) -> bool:
    """Whether a connection with this ``flag`` counts as rejected."""
    return flag in REJ_FLAGS
