"""Saving and loading detectors: a manifest checked before anything is read.

A saved detector is a directory::

    manifest.json   detector name, package version, params, feature names, training range,
                    and the sha256 + size of every other file below
    state.json      learned state as JSON; arrays, tensors and opaque objects are references
    arrays.npz      every numpy array of the state (read with ``allow_pickle=False``)
    weights.pt      torch tensors / module state dicts (``torch.save(state_dict)``; read with
                    ``torch.load(..., weights_only=True)``), only for deep detectors
    objects.pkl     opaque objects (river models, scikit-learn estimators), only for the
                    detectors that hold them

:func:`load_detector` reads the manifest (plain JSON), checks the detector name against the
registry (never imports a class path from the file), then checks the sha256 of every listed
file, and only then reads them. ``objects.pkl`` is the single pickled file: it is unpickled
only after its sha256 matched the manifest, so a file swapped or altered after saving is
refused. The manifest itself is not signed: a directory from an untrusted party should not be
loaded at all when it contains ``objects.pkl`` (pass ``allow_pickle=False`` to enforce that).

The same encoder gives :func:`detector_to_state`, a pure-JSON form (arrays inline) for stream
checkpoints; it refuses opaque objects.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import json
import pickle
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "MANIFEST",
    "ManifestError",
    "detector_from_state",
    "detector_to_state",
    "load_detector",
    "read_manifest",
    "register_stateful",
    "save_detector",
    "sha256_file",
]

FORMAT = "anomstream-detector/1"
MANIFEST = "manifest.json"
_STATE, _ARRAYS, _WEIGHTS, _OBJECTS = "state.json", "arrays.npz", "weights.pt", "objects.pkl"

# Helper objects (calibrators, thresholds) that may appear inside a detector's state; only
# these class names are rebuilt when decoding.
_STATEFUL: dict[str, type] = {}


class ManifestError(ValueError):
    """The saved directory does not match its manifest (missing, altered or unknown)."""


def register_stateful(cls: type) -> type:
    """Allow ``cls`` (with ``to_state()`` / ``from_state()``) inside saved detector state."""
    _STATEFUL[cls.__name__] = cls
    return cls


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _package_version() -> str:
    try:
        return metadata.version("anomstream")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


# -- encoding ---------------------------------------------------------------------------------
class _Sink:
    """Collects the non-JSON parts of a state while it is encoded (``None`` = JSON only)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.tensors: dict[str, Any] = {}
        self.objects: dict[str, Any] = {}

    def key(self, path: str) -> str:
        return path.replace("/", ".")


def _is_torch(value: Any, kind: str) -> bool:
    import sys

    torch = sys.modules.get("torch")
    if torch is None:  # torch never imported: value cannot be a torch object
        return False
    return isinstance(value, torch.nn.Module if kind == "module" else torch.Tensor)


#: Arrays with fewer elements stay readable JSON lists in a state.
_PACK_FROM = 16


def _ndarray_json(value: np.ndarray) -> dict[str, Any]:
    """An array in a JSON state: small ones as lists, larger ones as the base64 of their
    zlib-compressed little-endian bytes — exact, and an order of magnitude cheaper to
    encode, store and decode than a list of float reprs (per-sensor states are
    checkpointed after every batch).

    >>> x = np.linspace(0, 1, 50).reshape(5, 10)
    >>> enc = _ndarray_json(x)
    >>> sorted(enc), np.array_equal(_decode(enc, None), x)
    (['__ndarray_z__', 'dtype', 'shape'], True)
    >>> _ndarray_json(np.arange(3))["__ndarray__"]
    [0, 1, 2]
    """
    meta = {"dtype": str(value.dtype), "shape": list(value.shape)}
    if value.size < _PACK_FROM:
        return {"__ndarray__": value.tolist(), **meta}
    raw = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
    return {"__ndarray_z__": base64.b64encode(zlib.compress(raw, 1)).decode("ascii"), **meta}


def _encode(value: Any, path: str, sink: _Sink | None) -> Any:
    from detectors.base import Detector

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"object array at {path!r} cannot be serialised")
        if sink is None:
            return _ndarray_json(value)
        key = sink.key(path)
        sink.arrays[key] = value
        return {"__array__": key}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", sink) for i, v in enumerate(value)]}
    if isinstance(value, list):
        # Reference windows are long lists of plain numbers: nothing to encode in them.
        if all(type(v) is float or type(v) is int for v in value):
            return value
        return [_encode(v, f"{path}/{i}", sink) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{path}/{k}", sink) for k, v in value.items()}
        return {"__items__": [[_encode(k, f"{path}/k{i}", sink), _encode(v, f"{path}/v{i}", sink)]
                              for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, Detector):
        return {"__detector__": type(value).name,
                "params": _encode(value.get_params(), f"{path}/params", sink),
                "state": _encode(value._learned_state(), f"{path}/state", sink)}
    if type(value).__name__ in _STATEFUL and isinstance(value, _STATEFUL[type(value).__name__]):
        return {"__object__": type(value).__name__,
                "state": _encode(value.to_state(), f"{path}/state", sink)}
    if _is_torch(value, "module") or _is_torch(value, "tensor"):
        tensors = value.state_dict() if _is_torch(value, "module") else {"": value}
        if sink is None:
            enc = {k: {"__ndarray__": t.detach().cpu().numpy().tolist(),
                       "dtype": str(t.detach().cpu().numpy().dtype), "shape": list(t.shape)}
                   for k, t in tensors.items()}
            return {"__module__" if _is_torch(value, "module") else "__tensor__": enc}
        key = sink.key(path)
        for name, t in tensors.items():
            sink.tensors[f"{key}:{name}"] = t.detach().cpu()
        return {"__module__" if _is_torch(value, "module") else "__tensor__": key}
    if sink is None:
        raise TypeError(
            f"{type(value).__name__} at {path!r} has no JSON form; use save(path) instead"
        )
    key = sink.key(path)
    sink.objects[key] = value
    return {"__pickle__": key}


class _Source:
    """The non-JSON parts of a saved state, already verified against the manifest."""

    def __init__(self, arrays: Any = None, tensors: dict[str, Any] | None = None,
                 objects: dict[str, Any] | None = None) -> None:
        self.arrays = arrays
        self.tensors = tensors or {}
        self.objects = objects or {}


def _decode(value: Any, src: _Source | None) -> Any:
    from detectors.registry import get

    if isinstance(value, list):
        return [_decode(v, src) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return np.asarray(value["__ndarray__"], dtype=value["dtype"]).reshape(value["shape"])
    if "__ndarray_z__" in value:
        raw = zlib.decompress(base64.b64decode(value["__ndarray_z__"]))
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        return np.frombuffer(raw, dtype=dtype).astype(value["dtype"]).reshape(value["shape"])
    if "__array__" in value:
        if src is None or src.arrays is None:
            raise ManifestError(f"array {value['__array__']!r} referenced but no arrays file")
        return np.asarray(src.arrays[value["__array__"]])
    if "__tuple__" in value:
        return tuple(_decode(v, src) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, src): _decode(v, src) for k, v in value["__items__"]}
    if "__detector__" in value:
        cls = get(value["__detector__"])
        det = cls(**_decode(value["params"], src))
        det._restore_state(_decode(value["state"], src))
        return det
    if "__object__" in value:
        name = value["__object__"]
        if name not in _STATEFUL:
            raise ManifestError(f"unknown stateful object {name!r}")
        return _STATEFUL[name].from_state(_decode(value["state"], src))
    for tag in ("__module__", "__tensor__"):
        if tag in value:
            import torch

            ref = value[tag]
            if isinstance(ref, dict):
                tensors = {k: torch.as_tensor(np.asarray(v["__ndarray__"], dtype=v["dtype"])
                                              .reshape(v["shape"])) for k, v in ref.items()}
            else:
                if src is None:
                    raise ManifestError("tensor referenced but no weights file")
                prefix = f"{ref}:"
                tensors = {k[len(prefix):]: t for k, t in src.tensors.items()
                           if k.startswith(prefix)}
            return tensors if tag == "__module__" else tensors[""]
    if "__pickle__" in value:
        if src is None:
            raise ManifestError("pickled object referenced but no objects file")
        return src.objects[value["__pickle__"]]
    return {k: _decode(v, src) for k, v in value.items()}


# -- JSON state -------------------------------------------------------------------------------
def detector_to_state(det: Any) -> dict[str, Any]:
    """Pure-JSON parameters + learned state of a detector (arrays inline as lists)."""
    return {
        "format": FORMAT,
        "detector": type(det).name,
        "params": _encode(det.get_params(), "params", None),
        "state": _encode(det._learned_state(), "state", None),
    }


def detector_from_state(state: dict[str, Any], expected: type | None = None) -> Any:
    """Rebuild a detector from :func:`detector_to_state` output."""
    from detectors.registry import get

    if "detector" not in state:
        raise ValueError("not a detector state (no 'detector' key)")
    cls = get(state["detector"])
    if expected is not None and not issubclass(cls, expected):
        raise TypeError(f"state holds a {cls.__name__}, not a {expected.__name__}")
    det = cls(**_decode(state.get("params", {}), None))
    det._restore_state(_decode(state.get("state", {}), None))
    return det


# -- files ------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def save_detector(det: Any, path: str | Path, *, time_range: tuple[str, str] | None = None,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write ``det`` into the directory ``path``; returns the manifest path."""
    det._check_fitted()
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    sink = _Sink()
    params = _encode(det.get_params(), "params", sink)
    state = _encode(det._learned_state(), "state", sink)

    files: dict[str, bytes] = {
        _STATE: json.dumps(state, default=_json_default, separators=(",", ":")).encode()
    }
    if sink.arrays:
        buf = io.BytesIO()
        np.savez(buf, **sink.arrays)
        files[_ARRAYS] = buf.getvalue()
    if sink.tensors:
        import torch

        buf = io.BytesIO()
        torch.save(sink.tensors, buf)
        files[_WEIGHTS] = buf.getvalue()
    if sink.objects:
        files[_OBJECTS] = pickle.dumps(sink.objects, protocol=pickle.HIGHEST_PROTOCOL)
    for stale in (_STATE, _ARRAYS, _WEIGHTS, _OBJECTS):
        if stale not in files and (root / stale).exists():
            (root / stale).unlink()
    for name, data in files.items():
        _write_bytes(root / name, data)

    fmin = getattr(det, "feature_min_", None)
    fmax = getattr(det, "feature_max_", None)
    manifest = {
        "format": FORMAT,
        "detector": type(det).name,
        "class": f"{type(det).__module__}.{type(det).__qualname__}",
        "package": "anomstream",
        "version": _package_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "params": params,
        "feature_names": list(det.feature_names_),
        "training_range": {
            "n_samples": int(getattr(det, "n_samples_seen_", 0)),
            "feature_min": None if fmin is None else np.asarray(fmin).tolist(),
            "feature_max": None if fmax is None else np.asarray(fmax).tolist(),
            "time_range": list(time_range) if time_range is not None else None,
        },
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in files.items()
        },
        "extra": extra or {},
    }
    _write_bytes(root / MANIFEST, json.dumps(manifest, indent=2, default=_json_default).encode())
    return root / MANIFEST


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved detector, after checking every listed file's sha256."""
    root = Path(path)
    mpath = root / MANIFEST if root.is_dir() else root
    root = mpath.parent
    if not mpath.exists():
        raise ManifestError(f"no {MANIFEST} in {root}")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{mpath} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{mpath}: unknown format {manifest.get('format')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or _STATE not in files:
        raise ManifestError(f"{mpath}: manifest lists no state file")
    for name, info in files.items():
        if name not in (_STATE, _ARRAYS, _WEIGHTS, _OBJECTS):
            raise ManifestError(f"{mpath}: unexpected file {name!r} in manifest")
        fpath = root / name
        if not fpath.exists():
            raise ManifestError(f"{fpath} is listed in the manifest but missing")
        if sha256_file(fpath) != info.get("sha256"):
            raise ManifestError(f"{fpath}: sha256 does not match the manifest (altered file?)")
    return manifest


def load_detector(path: str | Path, *, allow_pickle: bool = True) -> Any:
    """Read a detector written by :func:`save_detector`, verifying the manifest first."""
    from detectors.registry import get

    root = Path(path)
    manifest = read_manifest(root)
    root = root if root.is_dir() else root.parent
    cls = get(manifest["detector"])  # KeyError for unknown names: nothing imported by path
    files = manifest["files"]
    arrays = None
    if _ARRAYS in files:
        with np.load(root / _ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    tensors: dict[str, Any] = {}
    if _WEIGHTS in files:
        import torch

        tensors = torch.load(root / _WEIGHTS, map_location="cpu", weights_only=True)
    objects: dict[str, Any] = {}
    if _OBJECTS in files:
        if not allow_pickle:
            raise ManifestError(f"{root} contains pickled objects and allow_pickle=False")
        # Safe only because the sha256 above matched the manifest written at save time.
        objects = pickle.loads((root / _OBJECTS).read_bytes())
    src = _Source(arrays, tensors, objects)
    state = json.loads((root / _STATE).read_text())
    det = cls(**_decode(manifest["params"], src))
    det._restore_state(_decode(state, src))
    return det

