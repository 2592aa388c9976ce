"""What the connection agent does to a micro-batch, as plain code (no Kafka, no I/O).

Traffic features ("connections to this host in the last 2 s", "of the last 100
connections") span hosts, so state is kept per input partition, not per host: one
:class:`ConnectionScorer` per partition holds the feature pipeline (with its traffic
windows), the detector, its calibration, and per destination host the recent anomalous
connections and the alert episode.

Until a scorer has seen ``bootstrap_events`` connections it has no scaling bounds or
vocabulary: those events are published with score 0 and ``context.bootstrap = true``,
then the pipeline is fitted on them and the detector learns them. Nothing is dropped.

How a connection is scored, and when that becomes an alert:

1. **Features**: the pipeline's scaled features, *unclipped* (a value beyond the bootstrap
   range keeps its distance: ``meta["out_of_range_scaled"]``).
2. **Ensemble** (:func:`~detectors.ensemble.connection_ensemble`, unless ``detector``
   names another), on features about *this destination* and *this connection* only: the
   per-service windows (``srv_*``, ``dst_host_srv_*``) mix hosts, so a sweep of host A
   would otherwise raise alerts on host B that offers the swept service. Members:

   * ``marginal_tail`` (:class:`~detectors.marginal_tail.MarginalTail`): per feature,
     ``-ln P(X >= x)`` among the reference connections, extrapolated exponentially beyond
     the largest value seen; features measuring the same thing (e.g. ``serror_rate`` and
     ``dst_host_serror_rate``) count once; the score is the sum over groups, in nats.
     Only the upper tail counts (more connections, more errors, a rarer service are
     unusual; a host getting a smaller share of the last 100 connections because another
     one is flooded is not);
   * ``half_space_trees`` (:class:`~detectors.online.HalfSpaceTrees`): sparse regions of
     the joint feature space, for combinations of values that are each ordinary; weighted
     0.1, so it raises an alert alone only when it is very sure.
3. **Calibration** (:class:`~detectors.calibration.BodyTailCalibrator`, one per member):
   ``p`` is the tail probability of the member's raw score among its reference scores:
   empirical up to their 90th percentile, an exponential tail beyond it whose scale comes
   from the body (50th to 90th percentile), so it reaches far below ``1 / window`` and no
   reference score above the 90th percentile (an attack that slipped in) moves it. The
   connection's score is ``1 - min(1, min_j p_j / w_j)`` over the members' weight shares
   ``w_j`` (the most alarmed member decides, Bonferroni-corrected). The first reference
   is the bootstrap's, cross-fitted (each half scored by members that learned the other
   half: out of sample); the first ``calibration_window`` calibration rows after the
   bootstrap replace it, then one in ``calibration_every`` refreshes it.
4. **Learning**: nothing is learned from a host while it is under alert (a flood makes the
   victim's other connections look odd too); otherwise the members learn rows scoring
   below ``learn_below`` (clearly normal) and the calibration rows below
   ``calibrate_below``. The marginal reference keeps a constant total weight
   (``capacity``, by default the bootstrap's size) and forgets with a half-life of
   ``half_life`` learned rows: a fixed reference from the bootstrap, refreshed slowly, so
   its scores do not drift against the calibration and an attack that is not alerted on
   is absorbed only slowly.
5. **Alert**: a connection is anomalous at ``score >= policy.threshold``; its destination
   host is alerted when it has ``evidence_k`` anomalous connections within
   ``evidence_window_s`` seconds (attacks are bursts; a lone odd connection is not an
   incident), one alert per episode (:class:`~streams.scoring.EpisodeTracker`). The alert
   names the members that found the connection anomalous and lists the most surprising
   features (nats, and the share of reference connections at least as extreme).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import structlog

from detectors import create as create_detector
from detectors.ensemble import Ensemble, connection_ensemble
from detectors.explain import top_k_contributions
from retrain.served import ServedConnectionModel, Verdict
from streams.scoring import (
    AlertPolicy,
    BatchResult,
    EpisodeTracker,
    RawRecord,
    ScoredEvent,
    alarmed_members,
    contribution_records,
    internal_error,
    member_surprises,
    new_alert,
    score_groups,
    surprise,
    validate_batch,
)
from windowing.connection import ConnectionFeaturePipeline
from windowing.features import FeatureVector, jsonable
from windowing.kdd import INTRINSIC_NUMERIC_FIELDS
from windowing.schemas import ConnectionEvent, InputLimits, parse_connection_event

__all__ = [
    "SOURCE_CONNECTIONS",
    "ConnectionModelConfig",
    "ConnectionScorer",
    "connection_groups",
    "event_row",
    "make_connection_detector",
    "score_connection_batch",
]

log = structlog.get_logger(__name__)

SOURCE_CONNECTIONS = "connections"
STATE_VERSION = 3


@dataclass(frozen=True)
class ConnectionModelConfig:
    """How a partition's connection scorer is built (see the module docstring)."""

    #: ``default_ensemble``, ``marginal_tail`` (that member alone), or any registered
    #: online detector (one member on the same columns, body-tail calibrated).
    detector: str = "default_ensemble"
    bootstrap_events: int = 1000
    chunk: int = 32
    top_k: int = 3
    #: Anomalous connections to one host within ``evidence_window_s`` that open an alert.
    evidence_k: int = 3
    evidence_window_s: float = 2.0
    #: Rows scoring at or above this are not learned by the members ...
    learn_below: float = 0.9
    #: ... nor, at or above this, by the calibration.
    calibrate_below: float = 0.99
    #: Total weight of the marginal reference; ``None``: the bootstrap's size.
    capacity: int | None = None
    #: Learned rows after which an old reference row weighs half.
    half_life: float = 100_000.0
    calibration_window: int = 2000
    #: After the first ``calibration_window``, one in this many calibration rows enters
    #: the calibration reference.
    calibration_every: int = 10
    #: Extrapolation scale (scaled feature units) of features constant in the reference.
    constant_scale: float = 0.1
    #: Also score the per-service windows (``srv_*``, ``dst_host_srv_*``).
    service_features: bool = False


#: Features measuring the same thing count once (the most surprising of them).
_GROUPS: tuple[tuple[str, ...], ...] = (
    *((f,) for f in INTRINSIC_NUMERIC_FIELDS),
    ("protocol_type=",),
    ("service=",),
    ("flag=",),
    ("count", "dst_host_count"),
    ("serror_rate", "dst_host_serror_rate"),
    ("rerror_rate", "dst_host_rerror_rate"),
    ("same_srv_rate", "diff_srv_rate", "dst_host_same_srv_rate", "dst_host_diff_srv_rate"),
    ("dst_host_same_src_port_rate",),
)
_SERVICE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("srv_count", "dst_host_srv_count"),
    ("srv_serror_rate", "dst_host_srv_serror_rate"),
    ("srv_rerror_rate", "dst_host_srv_rerror_rate"),
    ("srv_diff_host_rate", "dst_host_srv_diff_host_rate"),
)


def connection_groups(names: Sequence[str], service_features: bool = False) -> list[list[int]]:
    """Column groups of :func:`make_connection_detector` for the pipeline's feature names.

    A pattern ending with ``=`` takes every one-hot column of that field. Columns in no
    group (the per-service windows unless ``service_features``, calendar features) are
    not scored.

    >>> connection_groups(["count", "srv_count", "dst_host_count", "flag=SF", "flag=S0"])
    [[3, 4], [0, 2]]
    """
    spec = _GROUPS + (_SERVICE_GROUPS if service_features else ())
    groups = []
    for patterns in spec:
        cols = [
            i
            for i, n in enumerate(names)
            if any(n == p or (p.endswith("=") and n.startswith(p)) for p in patterns)
        ]
        if cols:
            groups.append(cols)
    return groups


def _capacity(config: ConnectionModelConfig) -> int:
    return config.bootstrap_events if config.capacity is None else config.capacity


def make_connection_detector(
    names: Sequence[str] | None = None, config: ConnectionModelConfig | None = None
) -> Ensemble:
    """The connection detector named in ``config.detector``, for feature columns ``names``.

    ``names`` are the pipeline's feature names (``None``: every column its own group).
    Numpy-only and vectorised; JSON state.

    >>> [m["name"] for m in make_connection_detector().members]
    ['marginal_tail', 'half_space_trees']
    """
    config = config or ConnectionModelConfig()
    groups = None if names is None else connection_groups(names, config.service_features)
    ens = connection_ensemble(
        groups=groups,
        capacity=float(_capacity(config)),
        half_life=config.half_life,
        constant_scale=config.constant_scale,
        calibration_window=config.calibration_window,
    )
    if config.detector == "default_ensemble":
        return ens
    if config.detector in {m["name"] for m in ens.members}:
        ens.members = [m for m in ens.members if m["name"] == config.detector]
        return ens
    detector = create_detector(config.detector)
    if not detector.online or not detector.json_state:
        raise ValueError(
            f"connection detector {config.detector!r} must learn online and keep JSON state"
        )
    columns = None if groups is None else sorted({c for g in groups for c in g})
    ens.members = [{"detector": detector, "columns": columns, "name": config.detector}]
    return ens


def _entity(ev: ConnectionEvent) -> str:
    """Scores and alerts are per destination host.

    The traffic features describe what happens to a destination (and a service) in a
    window, so a flood makes every connection to the victim look odd, the clients' too;
    one alert per victim per episode is what an operator can act on. The source host is
    in the score record's context.
    """
    return ev.dst_host or ev.src_host or ev.service


def event_row(ev: ConnectionEvent) -> dict[str, Any]:
    """A validated event as one row of the frame ``ConnectionFeaturePipeline.fit`` takes."""
    return {
        "timestamp": ev.timestamp,
        "protocol_type": ev.protocol_type,
        "service": ev.service,
        "flag": ev.flag,
        "src_host": ev.src_host,
        "dst_host": ev.dst_host,
        "src_port": ev.src_port,
        **ev.numeric,
    }


def _unclipped(fv: FeatureVector, index: dict[str, int]) -> np.ndarray:
    """The feature vector with out-of-range values at their real (scaled) distance."""
    x = np.array(fv.values, dtype=np.float64)
    for name, value in zip(
        fv.meta.get("out_of_range_fields", ()),
        fv.meta.get("out_of_range_scaled", ()),
        strict=True,
    ):
        x[index[name]] = value
    return x


def _crossfit_reference(
    X: np.ndarray, config: ConnectionModelConfig, names: Sequence[str]
) -> np.ndarray:
    """Out-of-sample raw member scores of the bootstrap rows, ``(n, n_members)``, for the
    first calibration reference.

    Blocks of rows (longer than the 100-connection traffic window, so neighbours that
    share their traffic features stay together) alternate between two halves; each half
    is scored by members that learned the other half twice (same total weight as the
    full detector, so the same scale of surprise).
    """
    n = len(X)
    block = min(200, max(1, n // 4))
    fold = (np.arange(n) // block) % 2 == 0
    if fold.all() or not fold.any():
        fold = np.arange(n) % 2 == 0
    out: np.ndarray | None = None
    for part in (fold, ~fold):
        det = make_connection_detector(names, config)
        det.learn_members(np.repeat(X[~part], 2, axis=0), feature_names=list(names))
        raw = det.member_scores(X[part], calibrated=False)
        if out is None:
            out = np.empty((n, raw.shape[1]))
        out[part] = raw
    return out  # type: ignore[return-value]


@dataclass
class ConnectionScorer:
    """Per-partition state: features, detector (members and their calibration), evidence
    and episodes per destination host, input position."""

    config: ConnectionModelConfig = field(default_factory=ConnectionModelConfig)
    pipeline: ConnectionFeaturePipeline | None = None
    detector: Ensemble | None = None
    episodes: dict[str, EpisodeTracker] = field(default_factory=dict)
    #: Per host, the timestamps of its last ``evidence_k`` anomalous connections.
    evidence: dict[str, list[float]] = field(default_factory=dict)
    n_scored: int = 0
    n_learned: int = 0
    n_calibrated: int = 0
    position: tuple[int, int] | None = None
    #: The trained model serving alongside the online members for the current batch
    #: (never checkpointed: the worker sets it from its model slot before each batch).
    served: ServedConnectionModel | None = None
    # In memory only: lost on a restart during bootstrap, which then simply starts over.
    _bootstrap: list[ConnectionEvent] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    _named: list[tuple[int, str]] = field(default_factory=list)

    def already_absorbed(self, record: RawRecord) -> bool:
        return (
            self.position is not None
            and record.partition == self.position[0]
            and record.offset <= self.position[1]
        )

    def _features(self, ev: ConnectionEvent) -> tuple[FeatureVector, np.ndarray]:
        fv = self.pipeline.update_one(ev)  # type: ignore[union-attr]
        if not self._index:
            self._index = {n: i for i, n in enumerate(fv.names)}
            self._named = [(i, n) for i, n in enumerate(fv.names) if "=" not in n]
        return fv, _unclipped(fv, self._index)

    def score_batch(
        self, items: Sequence[tuple[ConnectionEvent, RawRecord]], policy: AlertPolicy
    ) -> BatchResult:
        """Featurise, score, then learn ``items`` (this partition's connections, in order).

        Every item ends in exactly one of the result's lists; a connection whose
        featurisation or scoring raises becomes an ``internal_error`` dead letter.
        """
        out = BatchResult()
        pending: list[tuple[FeatureVector, np.ndarray, ConnectionEvent, RawRecord]] = []
        for ev, record in items:
            if self.already_absorbed(record):
                out.replayed.append(record)
                continue
            if self.pipeline is None:
                out.scored.append(self._bootstrap_event(ev, record))
                self._bootstrap.append(ev)
                if len(self._bootstrap) >= self.config.bootstrap_events:
                    self._fit_bootstrap(out.scored)
                continue
            try:
                pending.append((*self._features(ev), ev, record))
            except Exception as exc:
                out.dead.append(internal_error(record, exc, "featurisation"))
            self.position = (record.partition, record.offset)
        served = self._served_scores(pending)
        step = max(1, self.config.chunk)
        for lo in range(0, len(pending), step):
            chunk = pending[lo : lo + step]
            X = np.vstack([x for _, x, _, _ in chunk])
            det: Ensemble = self.detector  # type: ignore[assignment]
            try:
                raw, members, scores = det.score_parts(X)
            except Exception as exc:
                # Rows are scored one by one below only to find the culprit; the chunk is
                # not learned (its raw scores are incomplete).
                log.error("score_failed", rows=len(chunk), error=repr(exc)[:1000])
                raw = None
                members = np.zeros((len(chunk), len(det.members)))
                scores = np.full(len(chunk), np.nan)
                for i in range(len(chunk)):
                    try:
                        _, m, sc = det.score_parts(X[i : i + 1])
                        members[i], scores[i] = m[0], sc[0]
                    except Exception:
                        continue
            quiet = np.ones(len(chunk), dtype=bool)
            ok = np.zeros(len(chunk), dtype=bool)
            for i, (fv, x, ev, record) in enumerate(chunk):
                try:
                    if not np.isfinite(scores[i]):
                        raise FloatingPointError(f"score {scores[i]}")
                    model = None if served is None else served[lo + i]
                    out.scored.append(
                        self._event(
                            fv, ev, record, float(scores[i]), members[i], policy, x, model
                        )
                    )
                    ok[i] = True
                except Exception as exc:
                    out.dead.append(internal_error(record, exc, "scoring"))
                    continue
                quiet[i] = not self._under_alert(out.scored[-1].entity)
            if raw is not None and ok.any():
                try:
                    self._learn(X[ok], raw[ok], scores[ok], quiet[ok])
                except Exception as exc:
                    # Scored and published already; the model just misses these rows.
                    log.error("learn_failed", rows=int(ok.sum()), error=repr(exc)[:1000])
            self._forget_quiet_hosts(chunk[-1][2].timestamp)
        return out

    def _served_scores(
        self, pending: Sequence[tuple[FeatureVector, np.ndarray, ConnectionEvent, RawRecord]]
    ) -> list[tuple[float, Verdict | None]] | None:
        """The served model's calibrated score and verdict of every pending connection, in
        one batched pass; None without a model, or if it fails (logged: the online members
        still score the batch, as before a model existed)."""
        model = self.served
        if model is None or not pending:
            return None
        try:
            numeric = np.vstack([fv.meta["numeric"] for fv, _, _, _ in pending])
            cats = [
                {"protocol_type": ev.protocol_type, "service": ev.service, "flag": ev.flag}
                for _, _, ev, _ in pending
            ]
            X = model.features(numeric, cats)
            p = model.score(X)
            verdicts = model.verdicts(X) or [None] * len(pending)
        except Exception as exc:
            log.error("served_model_failed", version=model.version, error=repr(exc)[:1000])
            return None
        return [(float(s), v) for s, v in zip(p, verdicts, strict=True)]

    def _under_alert(self, entity: str) -> bool:
        tracker = self.episodes.get(entity)
        return tracker is not None and tracker.open_alert_id is not None

    def _learn(self, X: np.ndarray, raw: np.ndarray, scores: np.ndarray, quiet: np.ndarray) -> None:
        """Learn what looks normal, from hosts that are not under alert (a flood makes the
        victim's other connections look odd too).

        The members learn rows below ``learn_below``; the calibration rows below
        ``calibrate_below`` (it only uses the body of its reference, so it can take more
        of the tail, and must: cutting its reference at its own tail would shrink the tail
        it extrapolates from, round after round).
        """
        learn = quiet & (scores < self.config.learn_below)
        if learn.any():
            self.detector.learn_members(X[learn])  # type: ignore[union-attr]
            self.n_learned += int(learn.sum())
        calibrate = quiet & (scores < self.config.calibrate_below)
        if not calibrate.any():
            return
        ids = self.n_calibrated + np.arange(int(calibrate.sum()))
        self.n_calibrated += int(calibrate.sum())
        # The bootstrap's cross-fitted reference is only a stand-in (and the detector's
        # members' scores change while their reference grows, if ``capacity`` exceeds the
        # bootstrap):
        # until then every row is a calibration row, afterwards one in ``calibration_every``.
        fast = max(self.config.calibration_window, _capacity(self.config))
        every = max(1, self.config.calibration_every)
        picked = raw[calibrate][(ids < fast) | (ids % every == 0)]
        if len(picked):
            self.detector.learn_calibration(picked)  # type: ignore[union-attr]

    def _fit_bootstrap(self, out: list[ScoredEvent]) -> None:
        frame = pd.DataFrame([event_row(ev) for ev in self._bootstrap])
        self.pipeline = ConnectionFeaturePipeline().fit(frame)
        self._index = {}
        X = np.vstack([self._features(ev)[1] for ev in self._bootstrap])
        names = list(self.pipeline.names)
        reference = _crossfit_reference(X, self.config, names)
        self.detector = make_connection_detector(names, self.config)
        self.detector.learn_members(X, feature_names=names)
        self.detector.fit_calibration(reference)
        self._bootstrap = []
        last = out[-1].record
        self.position = (last.partition, last.offset)

    def _bootstrap_event(self, ev: ConnectionEvent, record: RawRecord) -> ScoredEvent:
        return ScoredEvent(
            source=SOURCE_CONNECTIONS,
            entity=_entity(ev),
            timestamp=ev.timestamp,
            value=None,
            score=0.0,
            raw_score=0.0,
            threshold=1.0,
            is_anomaly=False,
            detector=self.config.detector,
            model_version="bootstrap",
            features={},
            context={"bootstrap": True, "src_host": ev.src_host, "service": ev.service},
            record=record,
        )

    def _evidence(self, entity: str, timestamp: float, is_anomaly: bool) -> int:
        """Anomalous connections to ``entity`` within the evidence window, this one included."""
        times = self.evidence.get(entity)
        if is_anomaly:
            times = self.evidence.setdefault(entity, [])
            times.append(timestamp)
            del times[: -max(1, self.config.evidence_k)]
        if not times:
            return 0
        cutoff = timestamp - self.config.evidence_window_s
        return sum(1 for t in times if t > cutoff)

    def _forget_quiet_hosts(self, now: float) -> None:
        cutoff = now - self.config.evidence_window_s
        for host in [h for h, ts in self.evidence.items() if not ts or ts[-1] <= cutoff]:
            del self.evidence[host]

    def _event(
        self,
        fv: FeatureVector,
        ev: ConnectionEvent,
        record: RawRecord,
        score: float,
        member_scores: np.ndarray,
        policy: AlertPolicy,
        x: np.ndarray,
        served: tuple[float, Verdict | None] | None = None,
    ) -> ScoredEvent:
        warm = self.n_scored >= policy.warmup
        self.n_scored += 1
        entity = _entity(ev)
        online = score
        members = member_surprises(self.detector, member_scores)
        model_version = "online"
        verdict = None
        if served is not None and self.served is not None:
            score = combine_with_served(online, served[0])
            members[f"model:{self.served.trained.get('detector')}"] = surprise(served[0])
            model_version = self.served.version
            verdict = None if served[1] is None else served[1].to_json()
        is_anomaly = warm and score >= policy.threshold
        evidence = self._evidence(entity, ev.timestamp, is_anomaly)
        alerting = is_anomaly and evidence >= self.config.evidence_k
        tracker = self.episodes.setdefault(entity, EpisodeTracker())
        alert_id, opened = tracker.observe(
            alerting, ev.timestamp, policy, SOURCE_CONNECTIONS, entity
        )
        if not alerting and tracker.open_alert_id is None and entity in self.episodes:
            # Quiet hosts need no tracker: keeps the state small with many clients.
            del self.episodes[entity]
        context = {
            "warm": warm,
            "alert_id": alert_id,
            "src_host": ev.src_host,
            "protocol_type": ev.protocol_type,
            "service": ev.service,
            "flag": ev.flag,
            "traffic": fv.meta.get("traffic"),
            # Unscaled, NUMERIC_FIELDS order: what the trainer builds training rows from.
            "numeric": [float(v) for v in fv.meta["numeric"]],
            "members": members,
            "evidence": evidence,
            "out_of_range_fields": list(fv.meta.get("out_of_range_fields", ())),
        }
        if verdict is not None:
            context["verdict"] = verdict
        alert = None
        if opened and alert_id is not None:
            alert = new_alert(
                alert_id,
                SOURCE_CONNECTIONS,
                entity,
                score,
                policy,
                detectors=self._alarmed(member_scores, served, policy.threshold),
                features=self._top_features(x),
                timestamp=ev.timestamp,
                record=record,
                evidence={
                    "anomalous_connections": evidence,
                    "window_s": self.config.evidence_window_s,
                },
                src_host=ev.src_host,
                service=ev.service,
                flag=ev.flag,
            )
            if verdict is not None:
                alert["verdict"] = verdict
        values = fv.values.tolist()
        return ScoredEvent(
            source=SOURCE_CONNECTIONS,
            entity=entity,
            timestamp=ev.timestamp,
            value=None,
            score=score,
            raw_score=surprise(score),
            threshold=policy.threshold,
            is_anomaly=is_anomaly,
            detector=self.config.detector,
            model_version=model_version,
            # The traffic and size features explain connections; the one-hot columns are
            # implied by service/flag in the context. (Finite floats: no jsonable needed.)
            features={n: values[i] for i, n in self._named},
            context=jsonable(context),
            record=record,
            alert=alert,
        )

    def _alarmed(
        self,
        member_scores: np.ndarray,
        served: tuple[float, Verdict | None] | None,
        threshold: float,
    ) -> list[str]:
        """:func:`alarmed_members` over the online members and the served model."""
        if served is None or self.served is None:
            return alarmed_members(self.detector, member_scores, threshold)  # type: ignore[arg-type]
        names = [*self.detector.member_names_, f"model:{self.served.trained.get('detector')}"]  # type: ignore[union-attr]
        scores = [*map(float, member_scores), served[0]]
        order = sorted(range(len(names)), key=lambda i: -scores[i])
        return [names[i] for i in order if scores[i] >= threshold] or [names[order[0]]]

    def _top_features(self, x: np.ndarray) -> list[dict[str, Any]]:
        """The most surprising features, most surprising first: ``contribution`` in nats,
        ``tail_probability`` = share of reference connections at least as extreme
        (``exp(-contribution)``), ``ratio_to_normal`` against the feature's mean surprise
        (``None`` where that is 0: a value never seen before). Without a
        ``marginal_tail`` member: the ensemble's own explanation, if it has one."""
        det = self.detector.members_.get("marginal_tail")  # type: ignore[union-attr]
        if det is None:
            try:
                top = top_k_contributions(self.detector, x, k=self.config.top_k)
            except (NotImplementedError, ValueError):
                return []
            return contribution_records(top, x, self._index)
        contrib = det.explain(x[None, :])[0]
        normal = det.normal_contribution()
        names = det.feature_names_
        order = np.argsort(-contrib, kind="stable")[: self.config.top_k]
        return [
            {
                "name": names[i],
                "value": float(x[i]),
                "contribution": float(contrib[i]),
                "tail_probability": float(np.exp(-contrib[i])),
                "ratio_to_normal": float(contrib[i] / normal[i])
                if normal is not None and normal[i] > 1e-9
                else None,
            }
            for i in order
        ]

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "pipeline": None if self.pipeline is None else self.pipeline.to_state(),
            "detector": None if self.detector is None else self.detector.to_state(),
            "episodes": {k: v.to_state() for k, v in self.episodes.items()},
            "evidence": {k: list(v) for k, v in self.evidence.items()},
            "n_scored": self.n_scored,
            "n_learned": self.n_learned,
            "n_calibrated": self.n_calibrated,
            "position": list(self.position) if self.position is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConnectionScorer:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported connection state version {state.get('version')!r}")
        detector = None
        if state["detector"] is not None:
            detector = Ensemble.from_state(state["detector"])
        return cls(
            config=ConnectionModelConfig(**state["config"]),
            pipeline=None
            if state["pipeline"] is None
            else ConnectionFeaturePipeline.from_state(state["pipeline"]),
            detector=detector,  # type: ignore[arg-type]
            episodes={k: EpisodeTracker.from_state(v) for k, v in state["episodes"].items()},
            evidence={k: [float(t) for t in v] for k, v in state["evidence"].items()},
            n_scored=state["n_scored"],
            n_learned=state["n_learned"],
            n_calibrated=state["n_calibrated"],
            position=tuple(state["position"]) if state.get("position") else None,
        )


def combine_with_served(online: float, served: float) -> float:
    """The score of a connection judged by the online members and a served model: the
    smaller tail probability, Bonferroni-corrected for two looks (a tail probability
    still, so the alert threshold keeps its meaning).

    >>> round(combine_with_served(0.9, 0.9999), 6)
    0.9998
    >>> combine_with_served(0.2, 0.1)
    0.0
    """
    p = min(1.0, 2.0 * min(1.0 - online, 1.0 - served))
    return 1.0 - p


def score_connection_batch(
    records: Iterable[RawRecord],
    scorers: MutableMapping[int, ConnectionScorer],
    policy: AlertPolicy,
    config: ConnectionModelConfig | None = None,
    *,
    restore: Callable[[int], ConnectionScorer | None] | None = None,
    limits: InputLimits | None = None,
    served: ServedConnectionModel | None = None,
) -> BatchResult:
    """Validate, featurise and score a micro-batch; one scorer per input partition.

    A partition not in ``scorers`` is restored with ``restore(partition)`` or starts
    fresh. A partition whose scoring raises takes only its own connections to the dead
    letters (``internal_error``) and is restored from its last checkpoint next time.
    With a ``served`` model, every connection of the batch is also scored by it (one
    batched pass per partition), the two scores are combined by
    :func:`combine_with_served`, and the records name the model's version; the model is
    the same for the whole batch, so a model swap falls between batches.
    """
    config = config or ConnectionModelConfig()
    per_partition, dead = validate_batch(
        records,
        lambda raw: parse_connection_event(raw, limits=limits),
        lambda _, record: record.partition,
    )
    out = BatchResult(dead=dead)

    def serving(scorer: ConnectionScorer | None) -> ConnectionScorer | None:
        if scorer is not None:
            scorer.served = served
        return scorer

    # Only this batch's partitions: iterating all live states would reorder their LRU.
    for partition in per_partition:
        serving(scorers.get(partition))
    score_groups(
        per_partition,
        scorers,
        policy,
        out,
        new=lambda _: serving(ConnectionScorer(config)),  # type: ignore[arg-type,return-value]
        restore=None if restore is None else (lambda key: serving(restore(key))),
    )
    return out
