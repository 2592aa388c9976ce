"""Synthetic sensor readings with labelled anomalies, and a producer that sends them to Kafka.

The readings look like data-centre temperatures: a daily cycle, a slow trend, noise, and a
few injected spikes and level shifts whose ground truth is written alongside. A small share
of deliberately malformed records exercises the dead-letter path.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ConnectionSimulator",
    "Injected",
    "SensorSimulator",
    "malformed_records",
    "produce",
    "produce_connections",
]

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Injected:
    """Ground truth for one injected anomaly."""

    sensor_id: str
    kind: str  # "spike" | "level_shift"
    timestamp: float
    magnitude: float

    def to_json(self) -> dict[str, Any]:
        return {
            "sensor_id": self.sensor_id,
            "kind": self.kind,
            "timestamp": self.timestamp,
            "magnitude": self.magnitude,
        }


@dataclass
class SensorSimulator:
    """Deterministic (seeded) stream of readings from ``n_sensors`` sensors.

    Parameters
    ----------
    n_sensors
        Number of sensors; ids are ``rack-01-temp`` …
    cadence_s
        Event-time step between two readings of one sensor. Simulated time runs faster
        than wall time so a one-minute demo covers days of readings.
    start
        Event time of the first reading (UTC epoch seconds).
    anomaly_rate
        Probability per reading of starting an injected anomaly (after a clean warm-up).
    warmup
        Readings per sensor before any anomaly is injected (the default sensor detector
        learns for 150 readings before it speaks).
    min_gap
        Fewest readings of one sensor between two injected anomalies, so that each is its
        own episode (the default detector treats what follows an alarm for 200 readings
        as the same episode).

    Examples
    --------
    >>> sim = SensorSimulator(n_sensors=2, cadence_s=300, start=0.0, seed=1)
    >>> first = [r for r, _ in sim.readings(2)]
    >>> [r["sensor_id"] for r in first]
    ['rack-01-temp', 'rack-02-temp', 'rack-01-temp', 'rack-02-temp']
    >>> first[2]["timestamp"] - first[0]["timestamp"]
    300.0
    """

    n_sensors: int = 5
    cadence_s: float = 300.0
    start: float = 0.0
    seed: int = 7
    anomaly_rate: float = 0.004
    warmup: int = 200
    min_gap: int = 300
    noise: float = 0.15
    truth: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._rng = rng
        self.sensor_ids = [f"rack-{i + 1:02d}-temp" for i in range(self.n_sensors)]
        self._base = 20.0 + rng.uniform(0, 6, self.n_sensors)
        self._amp = rng.uniform(1.0, 3.0, self.n_sensors)
        self._phase = rng.uniform(0, 2 * math.pi, self.n_sensors)
        self._trend_per_day = rng.uniform(-0.05, 0.15, self.n_sensors)
        self._shift = np.zeros(self.n_sensors)
        self._last_injected = np.full(self.n_sensors, -self.min_gap)

    def value(self, i: int, t: float) -> float:
        """The clean signal of sensor ``i`` at event time ``t`` (before noise and spikes)."""
        days = (t - self.start) / DAY_S
        daily = self._amp[i] * math.sin(2 * math.pi * (t % DAY_S) / DAY_S + self._phase[i])
        return float(self._base[i] + daily + self._trend_per_day[i] * days + self._shift[i])

    def readings(self, n_rounds: int) -> Iterator[tuple[dict[str, Any], Injected | None]]:
        """``n_rounds`` rounds of one reading per sensor, in event-time order."""
        rng = self._rng
        for k in range(n_rounds):
            t = self.start + k * self.cadence_s
            for i, sid in enumerate(self.sensor_ids):
                injected: Injected | None = None
                spike = 0.0
                ready = k >= self.warmup and k - self._last_injected[i] >= self.min_gap
                if rng.random() < self.anomaly_rate and ready:
                    self._last_injected[i] = k
                    if rng.random() < 0.6:
                        spike = float(rng.choice([-1, 1]) * rng.uniform(3.0, 6.0))
                        injected = Injected(sid, "spike", t, spike)
                    else:
                        delta = float(rng.choice([-1, 1]) * rng.uniform(2.5, 4.0))
                        self._shift[i] += delta
                        injected = Injected(sid, "level_shift", t, delta)
                    self.truth.append(injected)
                v = self.value(i, t) + spike + float(rng.normal(0, self.noise))
                yield (
                    {"sensor_id": sid, "timestamp": t, "value": round(v, 4), "unit": "celsius"},
                    injected,
                )


def malformed_records(rng: np.random.Generator) -> Iterator[tuple[bytes, bytes]]:
    """Endless (key, value) pairs of the bad inputs producers really send."""
    samples = [
        (b"rack-99-temp", b"{not json"),
        (b"rack-99-temp", b'{"sensor_id": "rack-99-temp", "value": 21.0}'),
        (b"rack-99-temp", b'{"sensor_id": "rack-99-temp", "timestamp": 0, "value": NaN}'),
        (b"rack-99-temp", b'{"sensor_id": "rack-99-temp", "timestamp": 0, "value": "hot"}'),
        (b"rack-99-temp", b"[1, 2, 3]"),
        (b"rack-99-temp", b'{"sensor_id": "rack-99-temp", "timestamp": "soon", "value": 1}'),
    ]
    while True:
        yield samples[int(rng.integers(len(samples)))]


def produce(
    bootstrap_servers: str,
    topic: str,
    *,
    rate: float,
    duration_s: float,
    n_sensors: int = 5,
    cadence_s: float = 300.0,
    bad_rate: float = 0.01,
    seed: int = 7,
    truth_path: Path | None = None,
    on_progress: Any = None,
) -> dict[str, Any]:
    """Send readings to Kafka at ``rate`` events/s for ``duration_s`` seconds.

    Event times end near "now" so the history looks recent in Grafana. Returns counts; the
    ground truth (one JSON line per injected anomaly) goes to ``truth_path`` if given.
    """
    from kafka import KafkaProducer

    total = max(1, int(rate * duration_s))
    rounds = math.ceil(total / n_sensors)
    start = time.time() - rounds * cadence_s
    sim = SensorSimulator(n_sensors=n_sensors, cadence_s=cadence_s, start=start, seed=seed)
    rng = np.random.default_rng(seed + 1)
    bad = malformed_records(rng)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20, client_id="anomstream-sim"
    )
    sent = bad_sent = 0
    t0 = time.monotonic()
    truth_fh = truth_path.open("w") if truth_path is not None else None
    try:
        for reading, injected in sim.readings(rounds):
            if sent >= total:
                break
            producer.send(
                topic, key=reading["sensor_id"].encode(), value=json.dumps(reading).encode()
            )
            sent += 1
            if truth_fh is not None and injected is not None:
                truth_fh.write(json.dumps(injected.to_json()) + "\n")
            if rng.random() < bad_rate:
                k, v = next(bad)
                producer.send(topic, key=k, value=v)
                bad_sent += 1
            # Pace against the wall clock so the stream looks live, without drifting.
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            if on_progress is not None and sent % max(1, int(rate)) == 0:
                on_progress(sent, total)
        producer.flush()
    finally:
        producer.close()
        if truth_fh is not None:
            truth_fh.close()
    return {
        "events": sent,
        "malformed": bad_sent,
        "anomalies_injected": len(sim.truth),
        "seconds": time.monotonic() - t0,
        "sensors": sim.sensor_ids,
        "event_time_start": start,
        "cadence_s": cadence_s,
    }


# --------------------------------------------------------------------------------------
# Network connections
# --------------------------------------------------------------------------------------

#: (server, service, protocol, typical src_bytes, typical dst_bytes) of the simulated LAN.
_SERVICES: tuple[tuple[str, str, str, float, float], ...] = (
    ("10.0.0.10", "http", "tcp", 300.0, 4000.0),
    ("10.0.0.11", "http", "tcp", 250.0, 9000.0),
    ("10.0.0.20", "smtp", "tcp", 1200.0, 350.0),
    ("10.0.0.30", "domain_u", "udp", 45.0, 90.0),
    ("10.0.0.40", "ftp_data", "tcp", 800.0, 0.0),
    ("10.0.0.50", "private", "udp", 100.0, 100.0),
    ("10.0.0.60", "ecr_i", "icmp", 30.0, 0.0),
)


@dataclass
class ConnectionSimulator:
    """Raw connection events (no derived KDD traffic fields) with labelled attack bursts.

    Normal traffic: 40 clients talking to a handful of servers, one service each, sizes
    lognormal around each service's typical size, mostly ``SF`` flags. Attacks, each a
    labelled burst: ``neptune`` (SYN flood: ``S0`` to one server), ``portsweep`` (one host,
    many services, ``REJ``), ``smurf`` (large ICMP echo replies) and ``guess_passwd``
    (telnet with failed logins).

    Examples
    --------
    >>> sim = ConnectionSimulator(start=0.0, seed=3)
    >>> events = [e for e, _ in sim.events(50)]
    >>> sorted({e["protocol_type"] for e in events}) <= ["icmp", "tcp", "udp"]
    True
    >>> all(events[i]["timestamp"] <= events[i + 1]["timestamp"] for i in range(49))
    True
    """

    start: float = 0.0
    rate: float = 200.0
    seed: int = 11
    attack_rate: float = 0.002
    warmup: int = 2000
    truth: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._clients = [f"10.0.1.{i}" for i in range(1, 41)]

    def _base(
        self, t: float, src: str, dst: str, proto: str, service: str, flag: str
    ) -> dict[str, Any]:
        from windowing.kdd import INTRINSIC_NUMERIC_FIELDS

        ev: dict[str, Any] = {
            "timestamp": round(t, 6),
            "src_host": src,
            "dst_host": dst,
            "src_port": int(self._rng.integers(1024, 65535)),
            "protocol_type": proto,
            "service": service,
            "flag": flag,
        }
        ev.update({name: 0 for name in INTRINSIC_NUMERIC_FIELDS})
        return ev

    def _normal(self, t: float) -> dict[str, Any]:
        rng = self._rng
        dst, service, proto, sb, db = _SERVICES[int(rng.integers(len(_SERVICES)))]
        src = self._clients[int(rng.integers(len(self._clients)))]
        flag = (
            "SF"
            if proto != "tcp" or rng.random() > 0.01
            else str(rng.choice(["S0", "REJ", "RSTO"]))
        )
        ev = self._base(t, src, dst, proto, service, flag)
        if flag == "SF":
            ev["src_bytes"] = int(rng.lognormal(np.log(sb), 0.4))
            ev["dst_bytes"] = int(rng.lognormal(np.log(db), 0.6)) if db > 0 else 0
        ev["duration"] = int(rng.exponential(2.0)) if service in ("smtp", "ftp_data") else 0
        ev["logged_in"] = 1 if service in ("http", "smtp", "ftp_data") and flag == "SF" else 0
        return ev

    def _attack(self, t: float) -> list[dict[str, Any]]:
        rng = self._rng
        kind = str(rng.choice(["neptune", "portsweep", "smurf", "guess_passwd"]))
        attacker = f"172.16.{int(rng.integers(1, 255))}.{int(rng.integers(1, 255))}"
        victim = _SERVICES[int(rng.integers(len(_SERVICES)))][0]
        out: list[dict[str, Any]] = []
        if kind == "neptune":
            for i in range(150):
                out.append(self._base(t + i * 0.005, attacker, victim, "tcp", "private", "S0"))
        elif kind == "portsweep":
            services = [
                "telnet",
                "ftp",
                "finger",
                "auth",
                "pop_3",
                "imap4",
                "sunrpc",
                "X11",
                "private",
                "ssh",
                "login",
                "shell",
            ]
            for i in range(60):
                out.append(
                    self._base(
                        t + i * 0.02, attacker, victim, "tcp", services[i % len(services)], "REJ"
                    )
                )
        elif kind == "smurf":
            for i in range(120):
                ev = self._base(t + i * 0.004, attacker, victim, "icmp", "ecr_i", "SF")
                ev["src_bytes"] = 1032
                out.append(ev)
        else:
            for i in range(12):
                ev = self._base(t + i * 0.2, attacker, victim, "tcp", "telnet", "SF")
                ev.update(duration=2, src_bytes=125, dst_bytes=179, num_failed_logins=1, hot=1)
                out.append(ev)
        self.truth.append(
            {
                "kind": kind,
                "attacker": attacker,
                "victim": victim,
                "start": out[0]["timestamp"],
                "end": out[-1]["timestamp"],
                "events": len(out),
            }
        )
        return out

    def events(self, n: int) -> Iterator[tuple[dict[str, Any], str]]:
        """``n`` events in event-time order, each with its label (``normal`` or attack kind)."""
        rng = self._rng
        t = self.start
        pending: list[tuple[dict[str, Any], str]] = []
        emitted = 0
        while emitted < n:
            t += float(rng.exponential(1.0 / self.rate))
            while pending and pending[0][0]["timestamp"] <= t and emitted < n:
                yield pending.pop(0)
                emitted += 1
            if emitted >= n:
                break
            if emitted >= self.warmup and not pending and rng.random() < self.attack_rate:
                attack = self._attack(t)
                kind = self.truth[-1]["kind"]
                pending = [(ev, kind) for ev in attack]
                continue
            yield self._normal(t), "normal"
            emitted += 1


def produce_connections(
    bootstrap_servers: str,
    topic: str,
    *,
    rate: float,
    duration_s: float,
    attack_rate: float = 0.002,
    attack_warmup: int | None = None,
    bad_rate: float = 0.005,
    seed: int = 11,
    truth_path: Path | None = None,
    on_progress: Any = None,
) -> dict[str, Any]:
    """Send raw connections at ``rate`` events/s, event time = now (live traffic).

    Keyed by destination host: the KDD traffic features are per destination, and one key
    per destination keeps a destination's connections in one partition and one state.
    """
    from kafka import KafkaProducer

    total = max(1, int(rate * duration_s))
    sim = ConnectionSimulator(
        start=time.time(),
        rate=rate,
        seed=seed,
        attack_rate=attack_rate,
        warmup=min(2500, total // 3) if attack_warmup is None else attack_warmup,
    )
    rng = np.random.default_rng(seed + 1)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=20,
        client_id="anomstream-sim-connections",
    )
    sent = bad_sent = 0
    t0 = time.monotonic()
    try:
        for ev, _label in sim.events(total):
            producer.send(topic, key=ev["dst_host"].encode(), value=json.dumps(ev).encode())
            sent += 1
            if rng.random() < bad_rate:
                producer.send(topic, key=b"bad", value=b'{"timestamp": 0, "service": "http"}')
                bad_sent += 1
            # Pace by event time so bursts stay bursts.
            ahead = (ev["timestamp"] - sim.start) - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            if on_progress is not None and sent % max(1, int(rate)) == 0:
                on_progress(sent, total)
        producer.flush()
    finally:
        producer.close()
    if truth_path is not None:
        truth_path.write_text("".join(json.dumps(t) + "\n" for t in sim.truth))
    return {
        "events": sent,
        "malformed": bad_sent,
        "attacks_injected": len(sim.truth),
        "seconds": time.monotonic() - t0,
    }
