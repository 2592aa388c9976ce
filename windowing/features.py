"""Named feature vectors: what the pipelines hand to the detectors.

Every output carries its feature names, so a detector can explain an alert in the
operator's words ("``dst_host_srv_serror_rate`` 40× its normal range"), and its per-event
metadata (raw value, stationarity decision, gap and range flags), so score records can show
what the detector saw.

* :class:`FeatureVector` — one event (the online path);
* :class:`FeatureBatch` — many events of one entity as a 2-D array plus per-row metadata
  columns (the vectorised path).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FeatureBatch", "FeatureVector", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars unwrapped, NaN/inf as ``None``.

    >>> jsonable({"a": np.float64(1.5), "b": np.bool_(True), "c": float("nan"), "d": (1, 2)})
    {'a': 1.5, 'b': True, 'c': None, 'd': [1, 2]}
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """The features of one event.

    Attributes
    ----------
    entity
        The sensor id or connection source the vector belongs to.
    timestamp
        Event time, UTC epoch seconds.
    values
        1-D float64 array, one entry per name; always finite.
    names
        Feature names, same order as ``values``.
    meta
        Per-event context that is not a feature (raw value, decisions, flags).

    >>> fv = FeatureVector("t1", 0.0, np.array([0.5, 1.0]), ("value_z", "hour_cos"),
    ...                    {"differenced": True})
    >>> fv.as_dict()
    {'value_z': 0.5, 'hour_cos': 1.0}
    >>> fv["value_z"]
    0.5
    >>> fv.to_record()["meta"]
    {'differenced': True}
    """

    entity: str
    timestamp: float
    values: np.ndarray
    names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def as_dict(self) -> dict[str, float]:
        """``{name: value}`` in feature order."""
        return dict(zip(self.names, self.values.tolist(), strict=True))

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record: entity, timestamp, features by name, meta."""
        return {
            "entity": self.entity,
            "timestamp": self.timestamp,
            "features": jsonable(self.as_dict()),
            "meta": jsonable(self.meta),
        }


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    """The features of many events of one pipeline, as arrays.

    Attributes
    ----------
    entity
        The entity every row belongs to (a per-row ``entity`` meta column overrides it).
    timestamps
        Event times, shape ``(n,)``; NaN where the source has no time (KDD files).
    values
        Feature matrix, shape ``(n, len(names))``.
    names
        Feature names.
    meta
        Per-row columns, each an array of length ``n`` (2-D arrays are allowed).
    index
        Position of each row in the input given to the pipeline; rejected inputs have no row.
    rejected
        ``(input position, reason code)`` of the inputs that produced no row.

    >>> b = FeatureBatch("t1", np.array([0.0, 60.0]), np.array([[1.0], [2.0]]), ("value_z",),
    ...                  {"gap": np.array([False, True])})
    >>> len(b), b.row(1).meta
    (2, {'gap': True})
    >>> b.to_frame().columns.tolist()
    ['timestamp', 'value_z', 'gap']
    """

    entity: str
    timestamps: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    index: np.ndarray | None = None
    rejected: tuple[tuple[int, str], ...] = ()

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __iter__(self) -> Iterator[FeatureVector]:
        for i in range(len(self)):
            yield self.row(i)

    def column(self, name: str) -> np.ndarray:
        """One feature as a 1-D array."""
        return self.values[:, self.names.index(name)]

    def row(self, i: int) -> FeatureVector:
        """Row ``i`` as a :class:`FeatureVector` (meta values as plain Python scalars)."""
        meta = {k: _scalar(v[i]) for k, v in self.meta.items() if k != "entity"}
        entity = str(self.meta["entity"][i]) if "entity" in self.meta else self.entity
        return FeatureVector(entity, float(self.timestamps[i]), self.values[i].copy(),
                             self.names, meta)

    def to_frame(self, *, meta: bool = True) -> pd.DataFrame:
        """One row per event: ``timestamp``, the features, then the 1-D meta columns."""
        columns: dict[str, Any] = {"timestamp": self.timestamps}
        columns.update({name: self.values[:, j] for j, name in enumerate(self.names)})
        if meta:
            columns.update({k: v for k, v in self.meta.items() if np.ndim(v) == 1})
        index = self.index if self.index is not None else np.arange(len(self))
        return pd.DataFrame(columns, index=pd.Index(index))


def _scalar(value: Any) -> Any:
    # Same conventions as the one-at-a-time path: plain Python values, None for "no value".
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
