"""KDD-style traffic features of raw connections, over sliding event-time windows.

A raw connection (from a flow exporter) says nothing about its neighbours; KDD Cup 99's 19
derived fields do. They are computed here, per connection ``i`` with destination host
``h``, service ``s`` and source port ``p``, over two windows that both **include**
connection ``i`` itself (definitions as documented for NSL-KDD):

*Time window* — connections of the last ``horizon_s`` = 2 seconds, ``(t_i - 2, t_i]``:

* ``count`` — to host ``h``; ``serror_rate`` / ``rerror_rate`` — share of those with a SYN
  error (flag S0-S3) / rejected (REJ); ``same_srv_rate`` — share of those to service ``s``;
  ``diff_srv_rate`` = 1 - ``same_srv_rate``;
* ``srv_count`` — to service ``s``; ``srv_serror_rate`` / ``srv_rerror_rate`` — error
  shares among those; ``srv_diff_host_rate`` — share of those to a host other than ``h``.

*Connection window* — the last ``last_n`` = 100 connections:

* ``dst_host_count`` — to host ``h``; ``dst_host_same_srv_rate`` / ``dst_host_diff_srv_rate``
  — share of those to / not to service ``s``; ``dst_host_same_src_port_rate`` — share of
  those from source port ``p`` (0 when ``p`` is unknown); ``dst_host_serror_rate`` /
  ``dst_host_rerror_rate`` — error shares among those;
* ``dst_host_srv_count`` — to service ``s``; ``dst_host_srv_diff_host_rate`` — share of
  those to another host; ``dst_host_srv_serror_rate`` / ``dst_host_srv_rerror_rate``.

Event time: the window clock is the **watermark** (largest timestamp seen so far). A late
connection is treated as happening at the watermark, so windows only move forward and the
results do not depend on how the stream was cut into batches.

:class:`TrafficFeatureExtractor` keeps the windows (per destination host and per service,
plus the last-``last_n`` ring) with incremental counters: O(1) amortised per connection, and
bounded memory (the connections of the last 2 s plus the last 100). Its state is JSON-able
(``to_state`` / ``from_state``), e.g. for a Faust table. :meth:`update_many
<TrafficFeatureExtractor.update_many>` computes the same features for whole arrays with
sorts and prefix sums, continuing from (and updating) the same state.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from windowing.kdd import REJ_FLAGS, SERROR_FLAGS, TRAFFIC_FIELDS
from windowing.readers import epoch_seconds
from windowing.schemas import ConnectionEvent

__all__ = ["KeyedTimeWindow", "RecentConnections", "TrafficFeatureExtractor"]

STATE_VERSION = 1
_SERROR = sorted(SERROR_FLAGS)
_REJ = sorted(REJ_FLAGS)

# (seq, tau, dst_host, service, src_port or None, serror, rerror)
Record = tuple[int, float, str, str, int | None, bool, bool]


class KeyedTimeWindow:
    """The connections of the last ``horizon`` seconds sharing one key (a host or a service).

    Keeps counts of the whole window, of errors, and per ``other`` attribute (the service
    when the key is a host, the host when the key is a service).

    >>> w = KeyedTimeWindow()
    >>> w.add(0, 10.0, "http", serror=True, rerror=False)
    >>> w.add(1, 11.0, "ftp", serror=False, rerror=False)
    >>> w.expire(12.5 - 2.0)  # drops the connection at t=10
    >>> w.n, w.n_serror, w.others["ftp"]
    (1, 0, 1)
    """

    __slots__ = ("items", "n", "n_rerror", "n_serror", "others")

    def __init__(self) -> None:
        self.items: deque[tuple[int, float, str, bool, bool]] = deque()
        self.n = 0
        self.n_serror = 0
        self.n_rerror = 0
        self.others: Counter[str] = Counter()

    def add(self, seq: int, tau: float, other: str, serror: bool, rerror: bool) -> None:
        self.items.append((seq, tau, other, serror, rerror))
        self.n += 1
        self.n_serror += serror
        self.n_rerror += rerror
        self.others[other] += 1

    def expire(self, cutoff: float) -> None:
        """Drop connections with time ``<= cutoff``."""
        items = self.items
        while items and items[0][1] <= cutoff:
            _, _, other, serror, rerror = items.popleft()
            self.n -= 1
            self.n_serror -= serror
            self.n_rerror -= rerror
            left = self.others[other] - 1
            if left:
                self.others[other] = left
            else:
                del self.others[other]


class RecentConnections:
    """The last ``size`` connections, with counts by host, service, host+service, host+port.

    >>> r = RecentConnections(size=2)
    >>> r.add(0, 0.0, "a", "http", 80, False, False)
    >>> r.add(1, 0.0, "a", "ftp", None, True, False)
    >>> r.add(2, 0.0, "b", "http", 80, False, False)  # evicts connection 0
    >>> r.by_host["a"], r.by_service["http"], r.serror_by_host["a"]
    (1, 1, 1)
    """

    __slots__ = (
        "by_host",
        "by_host_port",
        "by_pair",
        "by_service",
        "items",
        "rerror_by_host",
        "rerror_by_service",
        "serror_by_host",
        "serror_by_service",
        "size",
    )

    def __init__(self, size: int = 100) -> None:
        self.size = size
        self.items: deque[Record] = deque()
        self.by_host: Counter[str] = Counter()
        self.by_service: Counter[str] = Counter()
        self.by_pair: Counter[tuple[str, str]] = Counter()
        self.by_host_port: Counter[tuple[str, int]] = Counter()
        self.serror_by_host: Counter[str] = Counter()
        self.serror_by_service: Counter[str] = Counter()
        self.rerror_by_host: Counter[str] = Counter()
        self.rerror_by_service: Counter[str] = Counter()

    def _count(self, rec: Record, step: int) -> None:
        _, _, host, service, port, serror, rerror = rec
        self.by_host[host] += step
        self.by_service[service] += step
        self.by_pair[(host, service)] += step
        if port is not None:
            self.by_host_port[(host, port)] += step
        if serror:
            self.serror_by_host[host] += step
            self.serror_by_service[service] += step
        if rerror:
            self.rerror_by_host[host] += step
            self.rerror_by_service[service] += step

    def add(self, seq: int, tau: float, host: str, service: str, port: int | None,
            serror: bool, rerror: bool) -> None:
        rec: Record = (seq, tau, host, service, port, serror, rerror)
        self.items.append(rec)
        self._count(rec, 1)
        if len(self.items) > self.size:
            self._count(self.items.popleft(), -1)
            # Zero counts would otherwise pile up for every host ever seen.
            for counter in (self.by_host, self.by_service, self.by_pair, self.by_host_port,
                            self.serror_by_host, self.serror_by_service,
                            self.rerror_by_host, self.rerror_by_service):
                if len(counter) > 4 * self.size:
                    for key in [k for k, v in counter.items() if v == 0]:
                        del counter[key]


class TrafficFeatureExtractor:
    """Online KDD traffic features (the 19 fields ``count`` … ``dst_host_srv_rerror_rate``).

    Parameters
    ----------
    horizon_s
        Length of the time window, seconds.
    last_n
        Length of the connection window.
    sweep_every
        Connections between sweeps that drop expired windows of idle hosts and services.

    >>> tx = TrafficFeatureExtractor()
    >>> f = tx.update(100.0, "10.0.0.5", "http", "SF")
    >>> f = tx.update(100.5, "10.0.0.5", "ftp", "S0")
    >>> f["count"], f["same_srv_rate"], f["serror_rate"], f["dst_host_count"]
    (2.0, 0.5, 0.5, 2.0)
    >>> f = tx.update(103.0, "10.0.0.5", "http", "SF")  # the first two left the 2 s window
    >>> f["count"], f["dst_host_count"]
    (1.0, 3.0)
    """

    names: tuple[str, ...] = TRAFFIC_FIELDS

    def __init__(self, horizon_s: float = 2.0, last_n: int = 100, sweep_every: int = 4096):
        if not horizon_s > 0 or last_n < 1:
            raise ValueError("horizon_s must be > 0 and last_n >= 1")
        self.horizon_s = float(horizon_s)
        self.last_n = int(last_n)
        self.sweep_every = int(sweep_every)
        self.watermark = -math.inf
        self.next_seq = 0
        self._hosts: dict[str, KeyedTimeWindow] = {}
        self._services: dict[str, KeyedTimeWindow] = {}
        self._recent = RecentConnections(last_n)

    # -- one connection ---------------------------------------------------------------------
    def update(
        self,
        timestamp: float,
        dst_host: str,
        service: str,
        flag: str,
        src_port: int | None = None,
    ) -> dict[str, float]:
        """Add one connection; its 19 traffic features by name."""
        tau = max(self.watermark, float(timestamp))
        self.watermark = tau
        cutoff = tau - self.horizon_s
        serror = flag in SERROR_FLAGS
        rerror = flag in REJ_FLAGS
        seq = self.next_seq
        self.next_seq += 1

        hw = self._hosts.get(dst_host)
        if hw is None:
            hw = self._hosts[dst_host] = KeyedTimeWindow()
        hw.expire(cutoff)
        hw.add(seq, tau, service, serror, rerror)
        sw = self._services.get(service)
        if sw is None:
            sw = self._services[service] = KeyedTimeWindow()
        sw.expire(cutoff)
        sw.add(seq, tau, dst_host, serror, rerror)
        rc = self._recent
        rc.add(seq, tau, dst_host, service, src_port, serror, rerror)

        count, srv_count = hw.n, sw.n
        pair = hw.others[service]
        host_n = rc.by_host[dst_host]
        srv_n = rc.by_service[service]
        pair_n = rc.by_pair[(dst_host, service)]
        port_n = 0 if src_port is None else rc.by_host_port[(dst_host, src_port)]
        if self.sweep_every and seq % self.sweep_every == self.sweep_every - 1:
            self._sweep()
        return {
            "count": float(count),
            "srv_count": float(srv_count),
            "serror_rate": hw.n_serror / count,
            "srv_serror_rate": sw.n_serror / srv_count,
            "rerror_rate": hw.n_rerror / count,
            "srv_rerror_rate": sw.n_rerror / srv_count,
            "same_srv_rate": pair / count,
            "diff_srv_rate": 1.0 - pair / count,
            "srv_diff_host_rate": 1.0 - pair / srv_count,
            "dst_host_count": float(host_n),
            "dst_host_srv_count": float(srv_n),
            "dst_host_same_srv_rate": pair_n / host_n,
            "dst_host_diff_srv_rate": 1.0 - pair_n / host_n,
            "dst_host_same_src_port_rate": port_n / host_n,
            "dst_host_srv_diff_host_rate": 1.0 - pair_n / srv_n,
            "dst_host_serror_rate": rc.serror_by_host[dst_host] / host_n,
            "dst_host_srv_serror_rate": rc.serror_by_service[service] / srv_n,
            "dst_host_rerror_rate": rc.rerror_by_host[dst_host] / host_n,
            "dst_host_srv_rerror_rate": rc.rerror_by_service[service] / srv_n,
        }

    def update_event(self, event: ConnectionEvent) -> dict[str, float]:
        """:meth:`update` from a validated event (which must have a ``dst_host``)."""
        if event.dst_host is None:
            raise ValueError("a connection needs dst_host for traffic features")
        return self.update(event.timestamp, event.dst_host, event.service, event.flag,
                           event.src_port)

    def _sweep(self) -> None:
        cutoff = self.watermark - self.horizon_s
        for windows in (self._hosts, self._services):
            for key in list(windows):
                w = windows[key]
                w.expire(cutoff)
                if not w.n:
                    del windows[key]

    # -- many connections -------------------------------------------------------------------
    def update_many(
        self,
        timestamps: Any,
        dst_hosts: Any,
        services: Any,
        flags: Any,
        src_ports: Any = None,
    ) -> np.ndarray:
        """Traffic features of many connections (arrival order), shape ``(n, 19)``.

        Same numbers as calling :meth:`update` on each; the state moves on as it would.
        ``src_ports`` may hold NaN / None for unknown ports.
        """
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        m = ts.size
        if m == 0:
            return np.empty((0, len(TRAFFIC_FIELDS)))
        hosts_new = np.asarray(dst_hosts, dtype=object).reshape(-1)
        services_new = np.asarray(services, dtype=object).reshape(-1)
        flags_new = pd.Series(np.asarray(flags, dtype=object).reshape(-1))
        if src_ports is None:
            ports_new = np.full(m, np.nan)
        else:
            ports_new = pd.to_numeric(pd.Series(np.asarray(src_ports, dtype=object).reshape(-1)),
                                      errors="coerce").to_numpy(dtype=np.float64)
        history = self._records()
        h = len(history)
        # Combined arrays: remembered connections (by seq) then the new ones.
        tau_new = np.maximum.accumulate(np.concatenate([[self.watermark], ts]))[1:]
        seq_new = np.arange(self.next_seq, self.next_seq + m, dtype=np.int64)
        if h:
            seq_h, tau_h, host_h, svc_h, port_h, serr_h, rerr_h = zip(*history, strict=True)
            seq_all = np.concatenate([np.asarray(seq_h, dtype=np.int64), seq_new])
            tau_all = np.concatenate([np.asarray(tau_h, dtype=np.float64), tau_new])
            host_all = np.concatenate([np.asarray(host_h, dtype=object), hosts_new])
            svc_all = np.concatenate([np.asarray(svc_h, dtype=object), services_new])
            port_all = np.concatenate([
                np.array([np.nan if p is None else p for p in port_h], dtype=np.float64),
                ports_new,
            ])
            serr_all = np.concatenate([np.asarray(serr_h, dtype=bool),
                                       flags_new.isin(_SERROR).to_numpy()])
            rerr_all = np.concatenate([np.asarray(rerr_h, dtype=bool),
                                       flags_new.isin(_REJ).to_numpy()])
        else:
            seq_all, tau_all, host_all, svc_all, port_all = (
                seq_new, tau_new, hosts_new, services_new, ports_new)
            serr_all = flags_new.isin(_SERROR).to_numpy()
            rerr_all = flags_new.isin(_REJ).to_numpy()
        n = h + m
        new = np.arange(h, n)
        host_id = pd.factorize(host_all)[0].astype(np.int64)
        svc_id = pd.factorize(svc_all)[0].astype(np.int64)
        # Pair ids are re-factorised so that group * (n + 1) + position fits in int64.
        pair_id = pd.factorize(host_id * (int(svc_id.max()) + 1) + svc_id)[0].astype(np.int64)
        port_known = ~np.isnan(port_all)
        # Unknown ports match nothing: give each its own group (its own count is zeroed below).
        port_id = pd.factorize(np.where(port_known, port_all, -1.0 - np.arange(n)))[0].astype(
            np.int64)
        host_port_id = pd.factorize(host_id * (int(port_id.max()) + 1) + port_id)[0].astype(
            np.int64)

        lower_time = np.searchsorted(tau_all, tau_all[new] - self.horizon_s, side="right")
        lower_ring = np.searchsorted(seq_all, seq_all[new] - (self.last_n - 1), side="left")
        serr = serr_all.astype(np.int64)
        rerr = rerr_all.astype(np.int64)

        def window(group: np.ndarray, lower: np.ndarray, *flags: np.ndarray) -> list[np.ndarray]:
            # Rows of one group are contiguous after a stable sort by group; a row's window is
            # the run of its group with positions in [lower, row]: count it (and sum flags)
            # with one binary search on the (group, position) key and prefix sums.
            order = np.argsort(group, kind="stable")
            where = np.empty(n, dtype=np.int64)
            where[order] = np.arange(n)
            key = group[order] * (n + 1) + order
            first = np.searchsorted(key, group[new] * (n + 1) + lower, side="left")
            last = where[new]
            out = [(last - first + 1).astype(np.float64)]
            for f in flags:
                prefix = np.concatenate([[0], np.cumsum(f[order])])
                out.append((prefix[last + 1] - prefix[first]).astype(np.float64))
            return out

        count, serr_t, rerr_t = window(host_id, lower_time, serr, rerr)
        srv_count, srv_serr_t, srv_rerr_t = window(svc_id, lower_time, serr, rerr)
        (pair_t,) = window(pair_id, lower_time)
        host_n, serr_r, rerr_r = window(host_id, lower_ring, serr, rerr)
        srv_n, srv_serr_r, srv_rerr_r = window(svc_id, lower_ring, serr, rerr)
        (pair_r,) = window(pair_id, lower_ring)
        (port_r,) = window(host_port_id, lower_ring)
        port_r[~port_known[new]] = 0.0

        features = {
            "count": count,
            "srv_count": srv_count,
            "serror_rate": serr_t / count,
            "srv_serror_rate": srv_serr_t / srv_count,
            "rerror_rate": rerr_t / count,
            "srv_rerror_rate": srv_rerr_t / srv_count,
            "same_srv_rate": pair_t / count,
            "diff_srv_rate": 1.0 - pair_t / count,
            "srv_diff_host_rate": 1.0 - pair_t / srv_count,
            "dst_host_count": host_n,
            "dst_host_srv_count": srv_n,
            "dst_host_same_srv_rate": pair_r / host_n,
            "dst_host_diff_srv_rate": 1.0 - pair_r / host_n,
            "dst_host_same_src_port_rate": port_r / host_n,
            "dst_host_srv_diff_host_rate": 1.0 - pair_r / srv_n,
            "dst_host_serror_rate": serr_r / host_n,
            "dst_host_srv_serror_rate": srv_serr_r / srv_n,
            "dst_host_rerror_rate": rerr_r / host_n,
            "dst_host_srv_rerror_rate": srv_rerr_r / srv_n,
        }
        # Remember what later connections can still see: the last `last_n` and those
        # inside the time window of the new watermark.
        self.watermark = float(tau_all[-1])
        self.next_seq = int(seq_all[-1]) + 1
        keep = (tau_all > self.watermark - self.horizon_s) | (
            seq_all >= self.next_seq - self.last_n)
        kept = np.flatnonzero(keep)
        self._load(
            (int(seq_all[i]), float(tau_all[i]), str(host_all[i]), str(svc_all[i]),
             None if not port_known[i] else int(port_all[i]), bool(serr_all[i]),
             bool(rerr_all[i]))
            for i in kept
        )
        return np.column_stack([features[name] for name in TRAFFIC_FIELDS])

    def update_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`update_many` from a frame with ``timestamp`` (epoch seconds or datetimes),
        ``dst_host``, ``service``, ``flag`` and optionally ``src_port`` columns."""
        return self.update_many(
            epoch_seconds(frame["timestamp"]),
            frame["dst_host"].to_numpy(dtype=object),
            frame["service"].to_numpy(dtype=object),
            frame["flag"].to_numpy(dtype=object),
            frame["src_port"].to_numpy(dtype=object) if "src_port" in frame else None,
        )

    # -- state ------------------------------------------------------------------------------
    def _records(self) -> list[Record]:
        """Every remembered connection, by sequence number."""
        by_seq: dict[int, Record] = {r[0]: r for r in self._recent.items}
        for host, w in self._hosts.items():
            for seq, tau, service, serror, rerror in w.items:
                if seq not in by_seq:
                    by_seq[seq] = (seq, tau, host, service, None, serror, rerror)
        for service, w in self._services.items():
            for seq, tau, host, serror, rerror in w.items:
                if seq not in by_seq:
                    by_seq[seq] = (seq, tau, host, service, None, serror, rerror)
        return [by_seq[k] for k in sorted(by_seq)]

    def _load(self, records: Iterable[Record]) -> None:
        """Rebuild the windows from remembered connections (in sequence order)."""
        self._hosts, self._services = {}, {}
        self._recent = RecentConnections(self.last_n)
        cutoff = self.watermark - self.horizon_s
        ring_from = self.next_seq - self.last_n
        for seq, tau, host, service, port, serror, rerror in records:
            if tau > cutoff:
                self._hosts.setdefault(host, KeyedTimeWindow()).add(
                    seq, tau, service, serror, rerror)
                self._services.setdefault(service, KeyedTimeWindow()).add(
                    seq, tau, host, serror, rerror)
            if seq >= ring_from:
                self._recent.add(seq, tau, host, service, port, serror, rerror)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: settings, clock and the remembered connections."""
        return {
            "version": STATE_VERSION,
            "horizon_s": self.horizon_s,
            "last_n": self.last_n,
            "sweep_every": self.sweep_every,
            "watermark": None if math.isinf(self.watermark) else self.watermark,
            "next_seq": self.next_seq,
            "records": [list(r) for r in self._records()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrafficFeatureExtractor:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported traffic state version {state.get('version')}")
        tx = cls(state["horizon_s"], state["last_n"], state["sweep_every"])
        tx.watermark = -math.inf if state["watermark"] is None else float(state["watermark"])
        tx.next_seq = int(state["next_seq"])
        tx._load(
            (int(s), float(t), str(h), str(v), None if p is None else int(p), bool(e), bool(r))
            for s, t, h, v, p, e, r in state["records"]
        )
        return tx
