"""Seasonal profile: expected value per hour-of-day x day-of-week slot, with a robust spread."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["SeasonalProfile", "decode_slot"]

_MAD_TO_SIGMA = 1.4826


def decode_slot(hour_sin: Any, hour_cos: Any, dow_sin: Any, dow_cos: Any) -> np.ndarray:
    """Slot ``dow * 24 + hour`` (0..167) from the cyclic time encoding.

    The encoding is ``sin/cos(2 pi hour / 24)`` and ``sin/cos(2 pi dow / 7)``; fractional
    hours round down to their hour.

    >>> h, d = 13.5, 2
    >>> int(decode_slot(np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24),
    ...                 np.sin(2 * np.pi * d / 7), np.cos(2 * np.pi * d / 7))[0])
    61
    """
    hour = np.mod(np.arctan2(hour_sin, hour_cos) * 24 / (2 * np.pi), 24)
    dow = np.mod(np.rint(np.arctan2(dow_sin, dow_cos) * 7 / (2 * np.pi)), 7)
    return (np.atleast_1d(dow).astype(int) * 24 + np.floor(hour + 1e-6).astype(int) % 24)


class SeasonalProfile(Detector):
    """Robust z-score of each value against its own time slot's recent history.

    The slot comes **in the input**, as designated columns (so the detector keeps the common
    ``score_many(X)`` signature and works inside ensembles and the stream agents):

    * ``time_encoding="cyclic"`` (default): columns ``time_columns`` hold hour sin, hour cos,
      day-of-week sin, day-of-week cos (what ``windowing`` emits); slot = dow * 24 + hour;
    * ``time_encoding="slot"``: column ``time_columns[0]`` holds the slot number itself
      (floored and taken modulo ``n_slots``).

    Every other column is a value; each slot keeps a ring buffer of its last ``per_slot``
    values, and a row scores ``max_j |x_j - median_slot| / spread_slot``. A slot with fewer
    than ``min_count`` values falls back to the hour-of-day pool (cyclic encoding) and then to
    the global window; the spread is floored at ``min_spread_ratio`` x the global spread so a
    slot that happened to be flat does not flag every wiggle.

    Parameters
    ----------
    time_encoding
        ``"cyclic"`` or ``"slot"``.
    time_columns
        Column indices of the time encoding (negative indices count from the end).
    n_slots
        Number of slots (168 = 24 hours x 7 days).
    per_slot
        Ring-buffer length per slot.
    min_count
        Values a slot needs before its own median is trusted.
    window
        Length of the global ring buffer.
    min_spread_ratio
        Floor of a slot's spread relative to the global spread.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> slots = np.arange(2000) % 24                  # hourly data, slot = hour of day
    >>> values = 10 * np.sin(2 * np.pi * slots / 24) + rng.normal(size=2000)
    >>> det = SeasonalProfile(time_encoding="slot", time_columns=(1,), n_slots=24)
    >>> _ = det.learn_many(np.column_stack([values, slots]))
    >>> normal, shifted = det.score_many([[10.0, 6], [0.0, 6]])   # 6 h: expected ~10
    >>> bool(normal < 2 < shifted)
    True
    """

    name = "seasonal_profile"
    online = True

    def __init__(self, time_encoding: str = "cyclic", time_columns: Any = (-4, -3, -2, -1),
                 n_slots: int = 168, per_slot: int = 16, min_count: int = 4,
                 window: int = 2016, min_spread_ratio: float = 0.1,
                 min_scale: float = 1e-9) -> None:
        self.time_encoding = time_encoding
        self.time_columns = time_columns
        self.n_slots = n_slots
        self.per_slot = per_slot
        self.min_count = min_count
        self.window = window
        self.min_spread_ratio = min_spread_ratio
        self.min_scale = min_scale

    # -- input layout ---------------------------------------------------------------------
    def _time_idx(self, d: int) -> list[int]:
        cols = [int(c) % d for c in self.time_columns]
        need = 4 if self.time_encoding == "cyclic" else 1
        if self.time_encoding not in ("cyclic", "slot"):
            raise ValueError("time_encoding must be 'cyclic' or 'slot'")
        if len(cols) != need or len(set(cols)) != need or d <= need:
            raise ValueError(
                f"{self.time_encoding!r} encoding needs {need} time column(s) plus at least "
                f"one value column; got time_columns={self.time_columns!r} for {d} features"
            )
        return cols

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tcols = self._time_idx(X.shape[1])
        vcols = [j for j in range(X.shape[1]) if j not in tcols]
        if self.time_encoding == "cyclic":
            slots = decode_slot(*(X[:, c] for c in tcols)) % self.n_slots
        else:
            slots = np.floor(X[:, tcols[0]]).astype(np.int64) % self.n_slots
        return X[:, vcols], slots

    # -- learning -------------------------------------------------------------------------
    def _learn(self, X: np.ndarray) -> None:
        values, slots = self._split(X)
        v = values.shape[1]
        if not hasattr(self, "slot_values_"):
            self.slot_values_ = np.zeros((self.n_slots, self.per_slot, v))
            self.slot_count_ = np.zeros(self.n_slots, dtype=np.int64)
            self.global_values_ = np.zeros((self.window, v))
            self.global_count_ = 0
        for row, s in zip(values, slots, strict=True):
            self.slot_values_[s, self.slot_count_[s] % self.per_slot] = row
            self.slot_count_[s] += 1
            self.global_values_[self.global_count_ % self.window] = row
            self.global_count_ += 1
        self._cache = None

    def _restore_state(self, state: dict[str, Any]) -> None:
        super()._restore_state(state)
        self._cache = None

    @staticmethod
    def _robust(buf: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and MAD-sigma over the filled part of ring buffers ``(k, length, v)``."""
        length = buf.shape[1]
        if buf.shape[0] == 1 and count[0] > 0:
            # One buffer (a slot, the pool or the global window: every scoring call):
            # plain medians of its filled part, without the NaN-masked path.
            part = buf[0, : min(int(count[0]), length)]
            med1 = np.median(part, axis=0)
            mad1 = np.median(np.abs(part - med1), axis=0)
            return med1[None, :], _MAD_TO_SIGMA * mad1[None, :]
        filled = np.arange(length)[None, :] < np.minimum(count, length)[:, None]
        masked = np.where(filled[:, :, None], buf, np.nan)
        with np.errstate(all="ignore"), _Quiet():
            med = np.nanmedian(masked, axis=1)
            mad = np.nanmedian(np.abs(masked - med[:, None, :]), axis=1)
        return med, _MAD_TO_SIGMA * mad

    def _global(self) -> tuple[np.ndarray, np.ndarray]:
        cache = getattr(self, "_cache", None)
        if cache is None:
            med, sig = self._robust(self.global_values_[None], np.array([self.global_count_]))
            cache = self._cache = (np.nan_to_num(med[0]), np.nan_to_num(sig[0]), {})
        return cache[0], cache[1]

    def _slot_stats(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """Median and spread of one slot, with the fallbacks; cached until the next learn."""
        g_med, g_sig = self._global()
        memo = self._cache[2]  # type: ignore[index]
        if slot in memo:
            return memo[slot]
        count = min(int(self.slot_count_[slot]), self.per_slot)
        if count >= self.min_count:
            med, sig = self._robust(self.slot_values_[slot][None], np.array([count]))
            med, sig = med[0], sig[0]
        elif self.time_encoding == "cyclic" and self.n_slots == 168:
            # Hour-of-day pool: the same hour on every day of the week.
            same_hour = np.arange(slot % 24, 168, 24)
            parts = [self.slot_values_[s, : min(int(self.slot_count_[s]), self.per_slot)]
                     for s in same_hour]
            pooled = np.concatenate(parts)
            if len(pooled) >= self.min_count:
                med, sig = self._robust(pooled[None], np.array([len(pooled)]))
                med, sig = med[0], sig[0]
            else:
                med, sig = g_med, g_sig
        else:
            med, sig = g_med, g_sig
        floor = np.maximum(self.min_spread_ratio * g_sig, self.min_scale)
        memo[slot] = (np.nan_to_num(med), np.maximum(np.nan_to_num(sig), floor))
        return memo[slot]

    # -- scoring --------------------------------------------------------------------------
    def explain(self, X: Any) -> np.ndarray:
        """Per-column robust z-score against the row's slot; time columns contribute 0."""
        X = self._check_input(X)
        values, slots = self._split(X)
        stats = {int(s): self._slot_stats(int(s)) for s in np.unique(slots)}
        med = np.array([stats[int(s)][0] for s in slots]).reshape(values.shape)
        sig = np.array([stats[int(s)][1] for s in slots]).reshape(values.shape)
        z = np.abs(values - med) / sig
        out = np.zeros_like(X)
        tcols = self._time_idx(X.shape[1])
        out[:, [j for j in range(X.shape[1]) if j not in tcols]] = z
        return out

    def score_many(self, X: Any) -> np.ndarray:
        return self.explain(X).max(axis=1)

    def normal_contribution(self) -> np.ndarray | None:
        if not self.is_fitted:
            return None
        out = np.full(self.n_features_in_, np.sqrt(2 / np.pi))
        out[self._time_idx(self.n_features_in_)] = 0.0
        return out


class _Quiet:
    """Silence numpy's 'All-NaN slice' warnings: empty slots are expected and handled."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
