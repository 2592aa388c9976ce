"""KDD Cup 99, harder checks: held-out attack types, a later time slice, the easy split.

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_kdd_holdout.py [--quick] [--splits ...]
        [--detectors ...] [--markdown OUT]

The easy split (random rows of the 10 % file for training and test) gives 0.99+ ROC AUC
to most detectors, while the labelled KDD test set, with attack types the training file
does not have, scores lower. This benchmark builds harder splits from the 10 % file alone
(all seeded):

* ``holdout``, held-out attack types: half of the attack types of every category
  (``dos``, ``probe``, ``r2l``, ``u2r``), exactly one of ``smurf`` / ``neptune`` among
  them (``--holdout`` names them instead), never reach training. 70 % of the normal rows
  and of the known types' rows form the training pool, the rest the test pool; held-out
  types go to the test pool whole. The test set holds every attack type; the table adds
  the ROC AUC of the held-out types against normal and of the known types against normal;
* ``time``, later time slice: file order as time; train on the first 60 % of the file,
  test on the last 40 %;
* ``random``, the easy split: as ``holdout`` with no type held out.

Training: the unsupervised detectors fit ``--n-train`` (20,000) normal rows of the
training part; ``open_set_classifier`` fits the same normal rows plus the training part's
rows of the known attack types (at most ``--max-per-type`` per type), with their labels.
Test: ``--n-test-normal`` normal rows (8,000) and ``--n-test-attack`` attack rows (2,000)
of the test part, the attack rows split evenly over the attack types the test part has (a
type with fewer rows gives all it has, the rest goes to the others): a uniform draw would
be 80 % smurf / neptune and would hide the small types. ``AUC file mix`` reweights the
attack rows back to the test part's own type proportions.

Features: ``windowing.ConnectionFeaturePipeline`` fitted on the normal training rows
(``evaluation.features.connection_features``, as ``anomstream evaluate`` does), so the
attack rows the classifier learns from are scaled with the normal rows' bounds.

Per split the table gives ROC AUC, AUC file mix, average precision, best F1 (at the
oracle threshold), train seconds, inference seconds per 10k rows and the saved model's
size in bytes; for ``open_set_classifier`` a verdict table follows: share of normal rows
called normal / unknown, of known-type attack rows named correctly / called unknown, of
held-out-type rows called unknown / normal. Numbers only, no assertions.
"""


from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

# The easy benchmark's detector settings, so the two benchmarks compare like with like.
from bench_detectors_kdd import candidates, size_on_disk  # noqa: E402

import detectors  # noqa: E402
from detectors import metrics  # noqa: E402
from evaluation.features import connection_features  # noqa: E402
from evaluation.kdd_categories import NORMAL_LABEL, category_of  # noqa: E402
from evaluation.online import DEFAULT_ENSEMBLE  # noqa: E402
from windowing.readers import read_kdd  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "kdd" / "kddcup.data_10_percent.gz"
DEFAULT_DETECTORS = ("default_ensemble", "marginal_tail", "autoencoder", "vae",
                     "clustered_ae", "ocsvm", "loda", "open_set_classifier")
SPLITS = ("holdout", "time", "random")
# The two floods: one is held out, the other stays known (so the classifier still meets
# a big class, and the held-out half is not only the small types).
FLOODS = ("smurf", "neptune")
UNKNOWN = "unknown"


# -- splits -----------------------------------------------------------------------------------
@dataclass
class Split:
    """Row positions (into the file) of one split, and which attack types are held out."""

    name: str
    title: str
    train_normal: np.ndarray
    train_attack: np.ndarray
    test: np.ndarray
    test_pool_attack_counts: dict[str, int]
    held_out: list[str] = field(default_factory=list)


def choose_held_out(types: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Half of the attack types of every category (rounded up), exactly one flood.

    >>> rng = np.random.default_rng(0)
    >>> out = choose_held_out(["smurf", "neptune", "back", "satan", "nmap"], rng)
    >>> sum(t in out for t in FLOODS), len(out)
    (1, 3)
    """
    flood = str(rng.choice([t for t in FLOODS if t in types])) if any(
        t in types for t in FLOODS) else None
    held = [flood] if flood else []
    by_cat: dict[str, list[str]] = {}
    for t in sorted(types):
        by_cat.setdefault(category_of(t), []).append(t)
    for cat in sorted(by_cat):
        members = by_cat[cat]
        want = (len(members) + 1) // 2 - sum(t in held for t in members)
        pool = [t for t in members if t not in FLOODS]
        if want > 0 and pool:
            held += [str(t) for t in rng.choice(pool, size=min(want, len(pool)),
                                                replace=False)]
    return sorted(held)


def balanced_attacks(pools: dict[str, np.ndarray], n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n`` rows spread evenly over the types of ``pools`` (a type with fewer rows gives
    all it has; what it leaves goes to the others).

    >>> pools = {"a": np.arange(5), "b": np.arange(100, 200), "c": np.arange(300, 400)}
    >>> rows = balanced_attacks(pools, 45, np.random.default_rng(0))
    >>> [int(((rows >= lo) & (rows < lo + 100)).sum()) for lo in (0, 100, 300)]
    [5, 20, 20]
    """
    take = {t: 0 for t in pools}
    left, open_types = n, [t for t in pools if len(pools[t])]
    while left > 0 and open_types:
        share = max(left // len(open_types), 1)
        for t in list(open_types):
            k = min(share, len(pools[t]) - take[t], left)
            take[t] += k
            left -= k
            if take[t] == len(pools[t]):
                open_types.remove(t)
            if left == 0:
                break
    rows = [rng.choice(pools[t], size=take[t], replace=False) for t in pools if take[t]]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)


def _cap_per_type(labels: np.ndarray, rows: np.ndarray, cap: int,
                  rng: np.random.Generator) -> np.ndarray:
    out = []
    for t in np.unique(labels[rows]):
        idx = rows[labels[rows] == t]
        out.append(rng.choice(idx, size=min(cap, len(idx)), replace=False))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def make_split(name: str, labels: np.ndarray, args: argparse.Namespace) -> Split:
    """The row positions of split ``name`` (see the module doc)."""
    rng = np.random.default_rng(args.seed)
    n = len(labels)
    is_normal = labels == NORMAL_LABEL
    types = sorted(set(labels[~is_normal]))
    held: list[str] = []
    if name == "time":
        cut = int(0.6 * n)
        train_part = np.arange(n) < cut
        test_part = ~train_part
        title = (f"later time slice: train on rows 1-{cut:,} (first 60 % of the file), "
                 f"test on rows {cut + 1:,}-{n:,}")
    else:
        if name == "holdout":
            held = (sorted(args.holdout.split(",")) if args.holdout
                    else choose_held_out(types, rng))
            unknown = set(held) - set(types)
            if unknown:
                raise SystemExit(f"--holdout: no such attack type: {', '.join(sorted(unknown))}")
        train_part = np.zeros(n, dtype=bool)
        # 70 / 30 per label (normal and every attack type): every known type is on both
        # sides; a held-out type is then moved to the test side whole.
        for t in ["normal", *types]:
            idx = np.flatnonzero(labels == t)
            rng.shuffle(idx)
            train_part[idx[: round(0.7 * len(idx))]] = True
        train_part &= ~np.isin(labels, held)
        test_part = ~train_part
        title = ("held-out attack types: " + ", ".join(held) if held
                 else "random split (easy): 70 % of every label for training, 30 % for test")
    train_normal = np.flatnonzero(train_part & is_normal)
    train_normal = np.sort(rng.choice(train_normal, size=min(args.n_train, len(train_normal)),
                                      replace=False))
    train_attack = _cap_per_type(labels, np.flatnonzero(train_part & ~is_normal),
                                 args.max_per_type, rng)
    test_normal = np.flatnonzero(test_part & is_normal)
    test_normal = rng.choice(test_normal, size=min(args.n_test_normal, len(test_normal)),
                             replace=False)
    pools = {t: np.flatnonzero(test_part & (labels == t)) for t in types}
    pools = {t: p for t, p in pools.items() if len(p)}
    test_attack = balanced_attacks(pools, args.n_test_attack, rng)
    return Split(name, title, train_normal, train_attack,
                 np.sort(np.concatenate([test_normal, test_attack])),
                 {t: len(p) for t, p in pools.items()}, held)


# -- detectors --------------------------------------------------------------------------------
def factories(d: int, quick: bool) -> dict[str, Callable[[], detectors.Detector]]:
    """Benchmark parameters: those of ``bench_detectors_kdd.py`` (same d-dependent network
    sizes and epochs), plus the open-set classifier and, if registered, ``bigan``."""
    out: dict[str, Callable[[], detectors.Detector]] = dict(candidates(d, quick))
    epochs = 8 if quick else 60
    hidden = (64, 32) if d > 40 else (32, 16)
    out["open_set_classifier"] = lambda: detectors.OpenSetClassifier(
        hidden=hidden, epochs=epochs, progress=False)
    if "bigan" in detectors.available():
        cls = detectors.get("bigan")
        accepted = inspect.signature(cls.__init__).parameters
        wanted = {"hidden": hidden, "latent_dim": 8, "epochs": epochs, "progress": False}
        out["bigan"] = lambda: cls(**{k: v for k, v in wanted.items() if k in accepted})
    return out


def _apply_params(det: detectors.Detector, params: dict[str, Any]) -> detectors.Detector:
    for key, value in params.items():
        if key not in det.get_params():
            raise SystemExit(f"--param: {type(det).__name__} has no parameter {key!r}")
        setattr(det, key, value)
    return det


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` (VALUE read as a Python literal when it is one)."""
    import ast

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, _, value = item.partition("=")
        name, _, key = target.partition(".")
        if not key or not _:
            raise SystemExit(f"--param {item!r}: expected NAME.KEY=VALUE")
        try:
            parsed: Any = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out.setdefault(name, {})[key] = parsed
    return out


# -- one split --------------------------------------------------------------------------------
def _auc(y: np.ndarray, s: np.ndarray, weight: np.ndarray | None = None) -> float:
    if y.min() == y.max():
        return float("nan")
    if weight is None:
        return float(metrics.roc_auc(y, s))
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s, sample_weight=weight))


def run_split(split: Split, frame: pd.DataFrame, labels: np.ndarray, names: list[str],
              params: dict[str, dict[str, Any]], args: argparse.Namespace
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    t0 = time.perf_counter()
    cf = connection_features(frame, split.train_normal, np.zeros(0, dtype=np.int64),
                             frame.iloc[split.test])
    attack_batch = cf.pipeline.update_many(frame.iloc[split.train_attack])
    attack_rows = split.train_attack[np.asarray(attack_batch.index)]
    X_attack = attack_batch.values
    test_rows = split.test[np.asarray(cf.test.index)]
    Xte, lab = cf.test.values, labels[test_rows]
    y = (lab != NORMAL_LABEL).astype(np.int8)
    held = np.isin(lab, split.held_out)
    known = (y == 1) & ~held
    # Each attack row stands for (pool rows of its type / test rows of its type).
    weight = np.ones(len(y))
    for t, pool in split.test_pool_attack_counts.items():
        rows = lab == t
        if rows.any():
            weight[rows] = pool / rows.sum()
    weight[y == 1] *= (y == 1).sum() / weight[y == 1].sum()
    print(f"\n== {split.name}: {split.title}\n   features {time.perf_counter() - t0:.1f} s; "
          f"train {len(cf.fit):,} normal + {len(X_attack):,} labelled attack rows "
          f"({len(set(labels[attack_rows]))} types, classifier only); test {int((y == 0).sum()):,}"
          f" normal + {int(y.sum()):,} attack rows ({len(set(lab[y == 1]))} types"
          + (f", {int(held.sum()):,} of held-out types" if split.held_out else "") + ")",
          flush=True)
    rows_out: list[dict[str, Any]] = []
    verdicts: dict[str, Any] = {}
    for name in names:
        det = _apply_params(factories(cf.fit.shape[1], args.quick)[name](),
                            params.get(name, {}))
        t1 = time.perf_counter()
        if isinstance(det, detectors.OpenSetClassifier):
            Xtr = np.vstack([cf.fit, X_attack])
            ytr = np.r_[np.full(len(cf.fit), NORMAL_LABEL, dtype=object),
                        labels[attack_rows].astype(object)]
            det.fit(Xtr, ytr, feature_names=cf.names)
        else:
            det.fit(cf.fit, feature_names=cf.names)
        train_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        s = det.score_many(Xte)
        infer = (time.perf_counter() - t1) / len(Xte) * 10_000
        _, f1 = metrics.best_fbeta_threshold(y, s, beta=1.0)
        r = {"detector": name, "roc_auc": _auc(y, s), "auc_file": _auc(y, s, weight),
             "ap": float(metrics.average_precision(y, s)), "f1": float(f1),
             "train_s": train_s, "infer_s_10k": infer, "size_bytes": size_on_disk(det)}
        if split.held_out:
            normal = y == 0
            r["auc_held_out"] = _auc(held[normal | held].astype(int), s[normal | held])
            r["auc_known"] = _auc(known[normal | known].astype(int), s[normal | known])
        rows_out.append(r)
        print(f"   {name:20s} AUC {r['roc_auc']:.3f} (file mix {r['auc_file']:.3f})"
              + (f" held-out {r['auc_held_out']:.3f} known {r['auc_known']:.3f}"
                 if split.held_out else "")
              + f" F1 {r['f1']:.3f} train {train_s:.1f} s", flush=True)
        if hasattr(det, "predict_verdict"):
            verdicts[name] = verdict_summary(det, Xte, lab, held, known)
    return rows_out, verdicts


def verdict_summary(det: Any, X: np.ndarray, lab: np.ndarray, held: np.ndarray,
                    known: np.ndarray) -> dict[str, Any]:
    """Shares of verdicts per kind of test row, and the two commonest verdicts per attack
    type."""
    said, _ = det.predict_verdict(X)
    said = np.asarray(said, dtype=object)
    normal = lab == NORMAL_LABEL

    def share(mask: np.ndarray, cond: np.ndarray) -> float:
        return float(cond[mask].mean()) if mask.any() else float("nan")

    out = {
        "normal_named": share(normal, said == NORMAL_LABEL),
        "normal_unknown": share(normal, said == UNKNOWN),
        "known_named": share(known, said == lab),
        "known_unknown": share(known, said == UNKNOWN),
        "known_normal": share(known, said == NORMAL_LABEL),
        "held_unknown": share(held, said == UNKNOWN),
        "held_normal": share(held, said == NORMAL_LABEL),
        "held_other_attack": share(held, (said != UNKNOWN) & (said != NORMAL_LABEL)),
        "n_normal": int(normal.sum()), "n_known": int(known.sum()), "n_held": int(held.sum()),
        "per_type": {},
    }
    for t in sorted(set(lab[held | known])):
        rows = lab == t
        vals, counts = np.unique(said[rows].astype(str), return_counts=True)
        top = sorted(zip(counts.tolist(), vals.tolist(), strict=True), reverse=True)[:2]
        out["per_type"][t] = {"rows": int(rows.sum()), "held_out": bool(held[rows].any()),
                              "unknown": share(rows, said == UNKNOWN),
                              "top": ", ".join(f"{v} {c / rows.sum():.0%}" for c, v in top)}
    return out


# -- output -----------------------------------------------------------------------------------
def _f(x: float, digits: int = 3) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def table(rows: list[dict[str, Any]], split: Split) -> str:
    extra = split.held_out != []
    head = ("| detector | ROC AUC | AUC file mix |"
            + (" AUC held-out types | AUC known types |" if extra else "")
            + " AP | best F1 | train s | infer s/10k | size bytes |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: -r["roc_auc"]):
        lines.append(
            f"| {r['detector']} | {_f(r['roc_auc'])} | {_f(r['auc_file'])} |"
            + (f" {_f(r['auc_held_out'])} | {_f(r['auc_known'])} |" if extra else "")
            + f" {_f(r['ap'])} | {_f(r['f1'])} | {r['train_s']:.1f} | {r['infer_s_10k']:.3f} |"
            f" {r['size_bytes']:,} |")
    return "\n".join(lines)


def verdict_table(verdicts: dict[str, Any], split: Split) -> str:
    lines = ["| verdicts | normal rows: named normal | normal: unknown | known-type attacks: "
             "named correctly | known: unknown | known: called normal |"
             + (" held-out types: unknown | held-out: called normal | held-out: named as a "
                "known attack |" if split.held_out else "")]
    lines.append("|" + "---|" * (lines[0].count("|") - 1))
    for name, v in verdicts.items():
        lines.append(
            f"| {name} | {_f(v['normal_named'])} | {_f(v['normal_unknown'])} | "
            f"{_f(v['known_named'])} | {_f(v['known_unknown'])} | {_f(v['known_normal'])} |"
            + (f" {_f(v['held_unknown'])} | {_f(v['held_normal'])} | "
               f"{_f(v['held_other_attack'])} |" if split.held_out else ""))
    for name, v in verdicts.items():
        for kind, held in (("held-out", True), ("known", False)):
            types = {t: p for t, p in v["per_type"].items() if p["held_out"] == held}
            if types:
                lines += ["", f"{name}, verdicts on {kind} types: "
                          + "; ".join(f"{t} ({p['rows']}): {p['top']}"
                                      for t, p in types.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[7:]))
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="the 10 %% KDD Cup 99 file (kddcup.data_10_percent.gz)")
    ap.add_argument("--splits", default=",".join(SPLITS),
                    help=f"comma list of {', '.join(SPLITS)} (default: all)")
    ap.add_argument("--detectors", default=",".join(DEFAULT_DETECTORS),
                    help="comma list of detector names (default: %(default)s; 'bigan' "
                         "too when registered)")
    ap.add_argument("--holdout", default=None,
                    help="comma list of the attack types to hold out (default: seeded, "
                         "half of every category, one of smurf / neptune)")
    ap.add_argument("--n-train", type=int, default=20_000, help="normal training rows")
    ap.add_argument("--max-per-type", type=int, default=5_000,
                    help="labelled training rows per attack type (classifier)")
    ap.add_argument("--n-test-normal", type=int, default=8_000)
    ap.add_argument("--n-test-attack", type=int, default=2_000)
    ap.add_argument("--param", "-p", action="append", default=[],
                    metavar="NAME.KEY=VALUE", help="override a detector parameter (repeat)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller run: 5,000 training rows, 2,000 + 500 test rows, 8 epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_train = min(args.n_train, 5_000)
        args.max_per_type = min(args.max_per_type, 1_000)
        args.n_test_normal = min(args.n_test_normal, 2_000)
        args.n_test_attack = min(args.n_test_attack, 500)

    import torch

    torch.set_num_threads(1)
    names = [n for n in args.detectors.split(",") if n]
    known_names = set(factories(118, args.quick))
    missing = [n for n in names if n not in known_names]
    if missing:
        raise SystemExit(f"unknown or unregistered detector(s): {', '.join(missing)}; "
                         f"known: {', '.join(sorted(known_names))}")
    splits = [s for s in args.splits.split(",") if s]
    if set(splits) - set(SPLITS):
        raise SystemExit(f"--splits: choose from {', '.join(SPLITS)}")
    params = _parse_params(args.param)

    t_start = time.perf_counter()
    frame = read_kdd(args.data)
    labels = frame["label"].to_numpy(dtype=object)
    out = [f"Data: `{args.data.name}` ({len(frame):,} rows); seed {args.seed}; "
           f"{'quick run' if args.quick else 'full run'}: train {args.n_train:,} normal rows "
           f"(+ at most {args.max_per_type:,} labelled rows per known attack type for the "
           f"classifier); test {args.n_test_normal:,} normal + {args.n_test_attack:,} attack "
           "rows, attack rows spread evenly over the attack types.", ""]
    for name in splits:
        split = make_split(name, labels, args)
        rows, verdicts = run_split(split, frame, labels, names, params, args)
        block = [f"**{split.name}: {split.title}**", "", table(rows, split), ""]
        if verdicts:
            block += [verdict_table(verdicts, split), ""]
        print("\n" + "\n".join(block), flush=True)
        out += block
    out.append(f"Total: {time.perf_counter() - t_start:.0f} s on {torch.get_num_threads()} "
               f"torch thread(s). Detector names: `{DEFAULT_ENSEMBLE}` = "
               "detectors.default_ensemble('connections').")
    print(out[-1])
    if args.markdown:
        args.markdown.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
