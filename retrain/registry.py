"""The model registry of the retraining loop: MLflow's registry, with our checks around it.

Every candidate detector is a *registered model version* in MLflow: its artifact folder
(written by :meth:`detectors.base.Detector.save`) is copied into MLflow's artifact store
through a run that also holds the candidate's metrics, parameters and lineage tags, and the
version itself carries the sha256 of every file (manifest included) as tags. The alias
``champion`` names the version the workers should run; ``previous_champion`` and a
history tag on the registered model make :meth:`ModelRegistry.rollback` possible.

Two kinds of store, the same code:

* embedded (default): ``sqlite:///<state_dir>/mlflow/mlflow.db`` for runs and the
  registry, ``<state_dir>/mlflow/artifacts`` for the files; no server to start;
* an existing MLflow tracking server: any tracking URI (``http://mlflow:5000``); its own
  artifact store is used and credentials come from MLflow's usual environment variables.

Why the sha256s live in the registry and not only in the folder's manifest: the manifest is
written next to the files it describes, so whoever can alter a file in the artifact store
can rewrite the manifest too. The tags are written once, in the registry's database, at
registration; :meth:`ModelRegistry.load` copies the folder to a private temporary
directory, checks it against those tags, and only then lets :mod:`detectors.persistence`
read it (which checks the manifest again and reads torch weights with
``weights_only=True``).

MLflow is imported lazily: ``anomstream --help`` and the stream workers do not pay its
import time (about 1.6 s of CPU here, see docs/registry.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from detectors.persistence import MANIFEST, ManifestError, load_detector, read_manifest, sha256_file

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from detectors.base import Detector

__all__ = [
    "ARTIFACT_PATH",
    "CHAMPION",
    "EXPERIMENT",
    "PREVIOUS_CHAMPION",
    "ArtifactIntegrityError",
    "ModelRegistry",
    "PromotionDecision",
    "PromotionRule",
    "RegistryError",
    "RollbackResult",
    "VersionInfo",
    "embedded_tracking_uri",
    "slice_evaluator",
]

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
#: MLflow experiment holding the registration runs (one run per candidate).
EXPERIMENT = "anomstream-registry"
#: Folder of a registration run's artifacts that holds the detector files.
ARTIFACT_PATH = "detector"

_TAG = "anomstream."
_SHA_TAG = _TAG + "sha256."
_HISTORY_TAG = _TAG + "champion_history"
_DECISION_TAG = _TAG + "last_decision"
# Enough to roll back through any realistic sequence of promotions, and far below MLflow's
# 100,000-character tag value limit.
_HISTORY_LIMIT = 100
# Model names go into MLflow filter strings; a plain alphabet makes quoting a non-issue.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def _quiet_mlflow_env() -> None:
    """Defaults for MLflow's environment, set before it is first imported.

    Telemetry off: MLflow 3 otherwise sends usage records to mlflow-telemetry.io and writes
    an installation id under ~/.config, which an embedded, offline registry must not do.
    No progress bars: they would interleave with the CLI's tables and JSON. ``setdefault``
    leaves an explicit choice in the environment alone.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


# At import, not at first use: every path into MLflow below (entities, artifacts, client)
# must already see these, and MLflow reads the telemetry switch once, when first imported.
_quiet_mlflow_env()


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown model or version, nothing to roll
    back to, a folder that is not a saved detector)."""


class ArtifactIntegrityError(RegistryError, ManifestError):
    """A registered version's files differ from the sha256s recorded at registration."""


def embedded_tracking_uri(state_dir: str | Path) -> str:
    """The SQLite store used when no tracking server is configured.

    >>> embedded_tracking_uri("/var/lib/anomstream")
    'sqlite:////var/lib/anomstream/mlflow/mlflow.db'
    """
    return f"sqlite:///{Path(state_dir).resolve() / 'mlflow' / 'mlflow.db'}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _finite(value: Any) -> float | None:
    """A metric as a float, or ``None`` when absent or not a finite number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise RegistryError(
            f"model name {name!r}: use letters, digits, '_', '.', '-' (at most 200 characters)"
        )
    return name


# -- promotion rule ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PromotionRule:
    """When a candidate may replace the champion: not worse on one validation metric.

    ``tolerance`` is absolute, in the metric's units: with ``higher_is_better`` the
    candidate passes when ``candidate >= champion - tolerance``.

    >>> rule = PromotionRule("average_precision", higher_is_better=True, tolerance=0.01)
    >>> rule.compare({"average_precision": 0.795}, {"average_precision": 0.80})
    (True, 'average_precision 0.795 >= 0.79 (champion 0.8 - tolerance 0.01)')
    >>> rule.compare({"average_precision": 0.70}, {"average_precision": 0.80})[0]
    False
    >>> PromotionRule("false_alarms", higher_is_better=False).compare({"false_alarms": 3}, None)
    (True, 'no champion yet')
    """

    metric: str = "average_precision"
    higher_is_better: bool = True
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance must be >= 0, not {self.tolerance}")

    def compare(
        self, candidate: Mapping[str, Any], champion: Mapping[str, Any] | None
    ) -> tuple[bool, str]:
        """``(not worse, why)`` for two metric dicts; a missing champion always passes."""
        if champion is None:
            return True, "no champion yet"
        cand = _finite(candidate.get(self.metric))
        if cand is None:
            return False, f"candidate has no finite {self.metric} to compare"
        champ = _finite(champion.get(self.metric))
        if champ is None:
            # Refused rather than waved through: an unmeasured champion is not evidence that
            # the candidate is better. An operator can still --force it.
            return False, f"champion has no finite {self.metric} to compare against"
        if self.higher_is_better:
            bound = champ - self.tolerance
            ok, op, sign = cand >= bound, ">=" if cand >= bound else "<", "-"
        else:
            bound = champ + self.tolerance
            ok, op, sign = cand <= bound, "<=" if cand <= bound else ">", "+"
        return ok, (
            f"{self.metric} {cand:.6g} {op} {bound:.6g} "
            f"(champion {champ:.6g} {sign} tolerance {self.tolerance:.6g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- records ----------------------------------------------------------------------------------
@dataclass
class VersionInfo:
    """One registered version as ``list`` / ``show`` report it (``to_dict`` for JSON)."""

    model: str
    version: str
    aliases: list[str]
    detector: str | None
    data_start: str | None
    data_end: str | None
    created: str | None
    status: str
    source: str
    run_id: str | None
    description: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PromotionDecision:
    """What :meth:`ModelRegistry.promote` did, and why.

    ``status``: ``promoted`` (the alias moved), ``rejected`` (the rule said worse; nothing
    moved) or ``unchanged`` (the version already is the champion).
    """

    model: str
    version: str
    status: Literal["promoted", "rejected", "unchanged"]
    reason: str
    previous_champion: str | None
    rule: dict[str, Any]
    candidate_value: float | None
    champion_value: float | None
    forced: bool = False
    at: str = field(default_factory=_now)

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}

    def event(self) -> dict[str, Any] | None:
        """The ``model-events`` record of this decision (``None`` when nothing moved).

        Kafka key: ``event["model"]``. Publishing is the caller's job (``retrain`` never
        imports Kafka): see ``publish_model_event`` in ``streams/cli.py``.
        """
        if not self.promoted:
            return None
        return {
            "event": "promoted",
            "model": self.model,
            "version": self.version,
            "previous_version": self.previous_champion,
            "reason": self.reason,
            "forced": self.forced,
            "metric": self.rule.get("metric"),
            "candidate_value": self.candidate_value,
            "champion_value": self.champion_value,
            "time": self.at,
        }


@dataclass
class RollbackResult:
    """What :meth:`ModelRegistry.rollback` did."""

    model: str
    from_version: str
    to_version: str
    at: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def event(self) -> dict[str, Any]:
        """The ``model-events`` record of this rollback (Kafka key: ``event["model"]``)."""
        return {
            "event": "rolled_back",
            "model": self.model,
            "version": self.to_version,
            "previous_version": self.from_version,
            "reason": f"rollback from version {self.from_version}",
            "time": self.at,
        }


def slice_evaluator(X: Any, y: Any) -> Callable[[Detector], dict[str, float]]:
    """Validation metrics of a detector on one slice: recent clean rows (``y = 0``) plus
    labelled incident rows (``y = 1``).

    Threshold-free ranking metrics (``average_precision``, ``roc_auc``) so that detectors
    with differently scaled raw scores compare fairly. A slice without incidents gives no
    metric, and :class:`PromotionRule` then refuses the candidate: clean data alone cannot
    show that a new model still catches anything.
    """
    from detectors.metrics import average_precision, roc_auc

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int)

    def evaluate(det: Detector) -> dict[str, float]:
        if y.size == 0 or y.min() == y.max():
            return {}
        s = det.score_many(X)
        return {"average_precision": float(average_precision(y, s)),
                "roc_auc": float(roc_auc(y, s))}

    return evaluate


# -- the registry -----------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str | None:
    return getattr(exc, "error_code", None)


class ModelRegistry:
    """Typed, thin layer over :class:`mlflow.MlflowClient` for anomstream detectors.

    ``tracking_uri`` is any MLflow tracking URI (also used as the registry URI);
    :meth:`embedded` builds the SQLite one under a state directory. ``rule`` is the
    default :class:`PromotionRule` of :meth:`promote`.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_location: str | None = None,
        experiment: str = EXPERIMENT,
        rule: PromotionRule | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.experiment = experiment
        self.rule = rule or PromotionRule()
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @classmethod
    def embedded(cls, state_dir: str | Path, **kwargs: Any) -> ModelRegistry:
        """SQLite database + local artifact folder under ``<state_dir>/mlflow``."""
        root = Path(state_dir).resolve() / "mlflow"
        (root / "artifacts").mkdir(parents=True, exist_ok=True)
        return cls(
            embedded_tracking_uri(state_dir),
            artifact_location=(root / "artifacts").as_uri(),
            **kwargs,
        )

    @classmethod
    def open(
        cls, tracking_uri: str | None, state_dir: str | Path, **kwargs: Any
    ) -> ModelRegistry:
        """A configured tracking server, or the embedded store when ``tracking_uri`` is unset."""
        if tracking_uri:
            return cls(tracking_uri, **kwargs)
        return cls.embedded(state_dir, **kwargs)

    # -- MLflow plumbing --------------------------------------------------------------------
    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri,
                                        registry_uri=self.tracking_uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is not None:
                self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location
                )
        return self._experiment_id

    def _ensure_model(self, name: str) -> None:
        try:
            self.client.create_registered_model(
                name, description="anomstream detector; alias 'champion' is what workers run"
            )
        except Exception as exc:
            if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise

    def _aliases(self, name: str) -> dict[str, str]:
        try:
            model = self.client.get_registered_model(name)
        except Exception as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(f"no registered model {name!r}") from None
            raise
        return {alias: str(v) for alias, v in (model.aliases or {}).items()}

    def _version(self, name: str, ref: str | int) -> ModelVersion:
        """A version by number (``3``, ``"3"``) or by alias (``"champion"``)."""
        _check_name(name)
        ref = str(ref)
        try:
            if ref.isdigit():
                return self.client.get_model_version(name, ref)
            return self.client.get_model_version_by_alias(name, ref)
        except Exception as exc:
            if _error_code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                self._aliases(name)  # a clearer error when the model itself is unknown
                kind = "version" if ref.isdigit() else "alias"
                raise RegistryError(f"model {name!r} has no {kind} {ref!r}") from None
            raise

    def _history(self, name: str) -> list[str]:
        tags = self.client.get_registered_model(name).tags or {}
        try:
            history = json.loads(tags.get(_HISTORY_TAG, "[]"))
        except json.JSONDecodeError:
            history = []
        return [str(v) for v in history if str(v).isdigit()]

    def _set_history(self, name: str, history: list[str]) -> None:
        self.client.set_registered_model_tag(
            name, _HISTORY_TAG, json.dumps(history[-_HISTORY_LIMIT:])
        )

    def _metrics(self, mv: ModelVersion) -> tuple[dict[str, float], dict[str, str]]:
        if not mv.run_id:
            return {}, {}
        try:
            run = self.client.get_run(mv.run_id)
        except Exception as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":  # run deleted in MLflow's UI
                return {}, {}
            raise
        return dict(run.data.metrics), dict(run.data.params)

    def _info(self, mv: ModelVersion, aliases: Mapping[str, str],
              with_run: bool = True) -> VersionInfo:
        tags = dict(mv.tags or {})
        metrics, params = self._metrics(mv) if with_run else ({}, {})
        return VersionInfo(
            model=mv.name,
            version=str(mv.version),
            aliases=sorted(a for a, v in aliases.items() if v == str(mv.version)),
            detector=tags.get(_TAG + "detector"),
            data_start=tags.get(_TAG + "data_start") or None,
            data_end=tags.get(_TAG + "data_end") or None,
            created=_iso_ms(mv.creation_timestamp),
            status=str(mv.status),
            source=mv.source,
            run_id=mv.run_id,
            description=mv.description or "",
            metrics=metrics,
            params=params,
            sha256={k[len(_SHA_TAG):]: v for k, v in tags.items() if k.startswith(_SHA_TAG)},
            tags={k: v for k, v in tags.items() if not k.startswith(_SHA_TAG)},
        )

    # -- registering ------------------------------------------------------------------------
    def register_candidate(
        self,
        model_name: str,
        artifact_dir: str | Path,
        metrics: Mapping[str, float],
        data_range: tuple[str | dt.datetime, str | dt.datetime] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """Register a saved detector folder as a new version of ``model_name``; returns the
        version number.

        The folder's manifest is verified first (a tampered or half-written folder is
        refused), then only the manifest and the files it lists are copied into the
        registry's artifact store, so deleting or reusing ``artifact_dir`` later does not
        affect the version. ``metrics`` are the candidate's validation metrics (what
        :meth:`promote` compares), ``data_range`` the event-time span of its training data
        (default: the manifest's ``time_range``), ``params`` the training parameters.
        """
        from mlflow.entities import Metric, Param, RunTag

        _check_name(model_name)
        src = Path(artifact_dir)
        try:
            manifest = read_manifest(src)
        except ManifestError as exc:
            raise RegistryError(f"{src} is not a verifiable saved detector: {exc}") from None
        files = [MANIFEST, *manifest["files"]]
        if data_range is None:
            data_range = manifest.get("training_range", {}).get("time_range") or (None, None)
        start, end = (v.isoformat() if isinstance(v, dt.datetime) else v for v in data_range)
        detector = str(manifest["detector"])

        lineage = {
            _TAG + "detector": detector,
            _TAG + "data_start": start or "",
            _TAG + "data_end": end or "",
            _TAG + "source_dir": str(src.resolve()),
            _TAG + "package_version": str(manifest.get("version", "")),
            **dict(tags or {}),
        }
        run = self.client.create_run(
            self._experiment(), tags=lineage, run_name=f"{model_name}-{detector}"
        )
        run_id = run.info.run_id
        try:
            ts = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            metric_rows = [Metric(k, float(v), ts, 0) for k, v in metrics.items()]
            param_rows = [Param(str(k), str(v)) for k, v in (params or {}).items()]
            # MLflow caps a batch at 1000 metrics and 100 params.
            for i in range(0, len(metric_rows), 1000):
                self.client.log_batch(run_id, metrics=metric_rows[i : i + 1000])
            for i in range(0, len(param_rows), 100):
                self.client.log_batch(run_id, params=param_rows[i : i + 100])
            self.client.log_batch(run_id, tags=[RunTag(_TAG + "manifest_sha256",
                                                       sha256_file(src / MANIFEST))])
            with tempfile.TemporaryDirectory(prefix="anomstream-register-") as tmp:
                # Stage only what the manifest names: stray files in the training job's
                # folder must not become part of the version.
                for name in files:
                    shutil.copy2(src / name, Path(tmp) / name)
                shas = {name: sha256_file(Path(tmp) / name) for name in files}
                self.client.log_artifacts(run_id, tmp, ARTIFACT_PATH)
            self.client.set_terminated(run_id)
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise

        self._ensure_model(model_name)
        version_tags = {
            _TAG + "detector": detector,
            _TAG + "data_start": start or "",
            _TAG + "data_end": end or "",
            _TAG + "registered_at": _now(),
            **{_SHA_TAG + name: sha for name, sha in shas.items()},
        }
        mv = self.client.create_model_version(
            model_name,
            source=f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}",
            run_id=run_id,
            tags=version_tags,
            description=description or f"{detector}, trained on {start or '?'} .. {end or '?'}",
        )
        return str(mv.version)

    # -- reading ----------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Names of every registered model, sorted."""
        return sorted(m.name for m in self.client.search_registered_models())

    def champion(self, model_name: str) -> str | None:
        """The champion's version number, or ``None`` before the first promotion."""
        return self._aliases(_check_name(model_name)).get(CHAMPION)

    def list_versions(self, model_name: str | None = None) -> list[VersionInfo]:
        """Every version of ``model_name`` (of every model when ``None``), newest first."""
        names = [_check_name(model_name)] if model_name else self.models()
        out: list[VersionInfo] = []
        for name in names:
            aliases = self._aliases(name)
            versions = self.client.search_model_versions(f"name='{name}'")
            versions = sorted(versions, key=lambda mv: int(mv.version), reverse=True)
            out.extend(self._info(mv, aliases) for mv in versions)
        return out

    def show(self, model_name: str, version: str | int) -> VersionInfo:
        """One version (by number or alias) with its metrics, parameters and sha256s."""
        mv = self._version(model_name, version)
        return self._info(mv, self._aliases(model_name))

    def load(
        self,
        model_name: str,
        ref: str | int = CHAMPION,
        *,
        allow_pickle: bool = True,
        loader: Callable[[Path], Any] | None = None,
    ) -> Any:
        """The detector of a version (number or alias), verified before anything is read.

        The files are copied to a private temporary folder and compared with the sha256s
        recorded at registration (same set of files, same digests); a mismatch raises
        :class:`ArtifactIntegrityError` and nothing is deserialised. ``loader`` reads the
        verified folder instead of :func:`~detectors.persistence.load_detector` (e.g.
        :meth:`retrain.served.ServedConnectionModel.load`).
        """
        import mlflow.artifacts

        mv = self._version(model_name, ref)
        expected = {k[len(_SHA_TAG):]: v for k, v in (mv.tags or {}).items()
                    if k.startswith(_SHA_TAG)}
        label = f"model {model_name!r} version {mv.version}"
        if MANIFEST not in expected:
            raise ArtifactIntegrityError(f"{label} has no recorded sha256s; refusing to load")
        with tempfile.TemporaryDirectory(prefix="anomstream-load-") as tmp:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=tmp, tracking_uri=self.tracking_uri))
            _verify_files(local, expected, label)
            if loader is not None:
                return loader(local)
            return load_detector(local, allow_pickle=allow_pickle)

    # -- moving the champion ----------------------------------------------------------------
    def promote(
        self,
        model_name: str,
        version: str | int,
        rule: PromotionRule | None = None,
        *,
        force: bool = False,
        evaluate: Callable[[Any], Mapping[str, float]] | None = None,
        loader: Callable[[Path], Any] | None = None,
    ) -> PromotionDecision:
        """Move ``champion`` to ``version`` if it is not worse than the current champion.

        Without ``evaluate``, the metrics logged at registration are compared (each computed
        by its training job on its validation slice). With ``evaluate`` (e.g.
        :func:`slice_evaluator` over recent clean data plus labelled incidents), both
        detectors are loaded — verified — and scored on that same slice, which is the fair
        comparison. ``force`` moves the alias whatever the rule says (the decision records
        it). Rejected candidates leave the champion untouched. ``loader`` is :meth:`load`'s,
        for models that are more than a detector (a served connection model).
        """
        rule = rule or self.rule
        cand = self._version(model_name, version)
        version = str(cand.version)
        champion = self.champion(model_name)
        if champion == version:
            return PromotionDecision(model_name, version, "unchanged",
                                     f"version {version} already is the champion", champion,
                                     rule.to_dict(), None, None, force)
        if evaluate is not None:
            cand_metrics = dict(evaluate(self.load(model_name, version, loader=loader)))
            champ_metrics = (None if champion is None
                             else dict(evaluate(self.load(model_name, champion, loader=loader))))
        else:
            cand_metrics = self._metrics(cand)[0]
            champ_metrics = (None if champion is None
                             else self._metrics(self._version(model_name, champion))[0])
        ok, why = rule.compare(cand_metrics, champ_metrics)
        decision = PromotionDecision(
            model=model_name,
            version=version,
            status="promoted" if ok or force else "rejected",
            reason=why if ok or not force else f"forced: {why}",
            previous_champion=champion,
            rule=rule.to_dict(),
            candidate_value=_finite(cand_metrics.get(rule.metric)),
            champion_value=None if champ_metrics is None
            else _finite(champ_metrics.get(rule.metric)),
            forced=force and not ok,
        )
        if decision.promoted:
            history = self._history(model_name)
            if champion is not None and (not history or history[-1] != champion):
                history.append(champion)  # champion set outside this class (e.g. MLflow UI)
            self.client.set_registered_model_alias(model_name, CHAMPION, version)
            if champion is not None:
                self.client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, champion)
            self._set_history(model_name, [*history, version])
            self.client.set_model_version_tag(model_name, version, _TAG + "promoted_at",
                                              decision.at)
        self.client.set_model_version_tag(model_name, version, _DECISION_TAG,
                                          json.dumps(decision.to_dict()))
        return decision

    def rollback(self, model_name: str) -> RollbackResult:
        """Move ``champion`` back to the version that held it before the current one.

        Versions deleted since are skipped; repeated rollbacks walk further back.
        """
        champion = self.champion(model_name)
        if champion is None:
            raise RegistryError(f"model {model_name!r} has no champion to roll back from")
        history = self._history(model_name)
        if not history or history[-1] != champion:
            history.append(champion)
        history.pop()  # the current champion
        existing = {str(mv.version) for mv in
                    self.client.search_model_versions(f"name='{model_name}'")}
        while history and (history[-1] not in existing or history[-1] == champion):
            history.pop()
        if not history:
            raise RegistryError(
                f"model {model_name!r}: no earlier champion to roll back to "
                f"(version {champion} is the first)"
            )
        target = history[-1]
        self.client.set_registered_model_alias(model_name, CHAMPION, target)
        below = [v for v in history[:-1] if v in existing and v != target]
        if below:
            self.client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, below[-1])
        elif PREVIOUS_CHAMPION in self._aliases(model_name):
            self.client.delete_registered_model_alias(model_name, PREVIOUS_CHAMPION)
        self._set_history(model_name, history)
        result = RollbackResult(model_name, champion, target)
        self.client.set_model_version_tag(model_name, champion, _TAG + "rolled_back_at",
                                          result.at)
        return result


def _verify_files(root: Path, expected: Mapping[str, str], label: str) -> None:
    """Same file names, same sha256s, as recorded at registration."""
    found = {p.name for p in root.iterdir()} if root.is_dir() else set()
    missing = sorted(set(expected) - found)
    extra = sorted(found - set(expected))
    if missing or extra:
        raise ArtifactIntegrityError(
            f"{label}: files differ from the registration record "
            f"(missing {missing or 'none'}, unexpected {extra or 'none'}); refusing to load"
        )
    for name in sorted(expected):
        actual = sha256_file(root / name)
        if actual != expected[name]:
            raise ArtifactIntegrityError(
                f"{label}: {name} has sha256 {actual[:12]}…, the registry recorded "
                f"{expected[name][:12]}… (altered after registration?); refusing to load"
            )
