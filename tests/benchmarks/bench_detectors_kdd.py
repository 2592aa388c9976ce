"""KDD Cup 99 benchmark of every detector: train on normal connections, test on a held-out split.

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_detectors_kdd.py [--data PATH] [--markdown OUT]

What it does (all seeded):

* reads ``kddcup.data_10_percent.gz`` (494,021 rows, 97,278 normal);
* holds out 30 % of the normal rows and 30 % of the attack rows as the test pool, and
  samples the test set from it: ``--n-test-normal`` normal rows (10,000) and as many attack
  rows (uniform over attack rows, so mostly smurf / neptune as in the file);
* trains every detector on ``--n-train`` rows (20,000) drawn from the other 70 % of the
  normal rows, then again with 5 %, 10 % and 20 % of those rows replaced by attacks drawn
  from the other 70 % of the attack rows (polluted training);
* two feature sets: the 18 continuous features below (``--features 18``) and all 41 fields
  with ``protocol_type`` / ``service`` / ``flag`` one-hot encoded (``--features 41``,
  118 columns); heavy-tailed counts are ``log1p``-scaled in both;
* prints ROC AUC, average precision, precision / recall / F1 / F2 at the best-F1
  threshold, parameters, model size on disk, training time, inference time per 10k rows,
  then the ROC AUC per pollution level; ``--markdown`` writes the same tables as Markdown.

For tuning, ``--split dev`` scores 10,000 normal rows of the training pool that no training
set uses and 10,000 attack rows from the far end of the training attack pool instead (never
the test pool), and ``--params '{"bigan": {"alpha": 0.5}}'`` overrides a detector's
benchmark parameters.

The test labels are used only for the metrics (the best-F1 threshold is an oracle operating
point, as in the published comparisons; ROC AUC / AP are threshold-free).
"""


from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import detectors  # noqa: E402
from detectors import metrics  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "kdd" / "kddcup.data_10_percent.gz"

NAMES = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
]
CATEGORICAL = ["protocol_type", "service", "flag"]
# The 18 continuous features: the three basic volume fields and the 15 traffic statistics
# that vary within normal traffic (the content counters, e.g. num_shells, are zero in >99 %
# of rows and the four dst_host error rates duplicate serror_rate / rerror_rate).
CONTINUOUS_18 = [
    "duration", "src_bytes", "dst_bytes", "count", "srv_count", "serror_rate",
    "rerror_rate", "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_rerror_rate",
]
HEAVY = ["duration", "src_bytes", "dst_bytes", "count", "srv_count", "dst_host_count",
         "dst_host_srv_count", "hot", "num_failed_logins", "num_compromised", "num_root",
         "num_file_creations", "num_shells", "num_access_files", "wrong_fragment", "urgent"]


def load_kdd(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=[*NAMES, "label"])
    df["anomaly"] = (df["label"] != "normal.").astype(int)
    return df


def features(df: pd.DataFrame, which: str, categories: dict[str, list[str]]) -> tuple[
        np.ndarray, list[str]]:
    """Numeric matrix for one feature set (log1p on heavy-tailed counts)."""
    if which == "18":
        cols = CONTINUOUS_18
        X = df[cols].to_numpy(dtype=np.float64)
        names = list(cols)
    else:
        num = [c for c in NAMES if c not in CATEGORICAL]
        X = df[num].to_numpy(dtype=np.float64)
        names = list(num)
        blocks = [X]
        for c in CATEGORICAL:
            cats = categories[c]
            onehot = (df[c].to_numpy()[:, None] == np.asarray(cats)[None, :]).astype(float)
            blocks.append(onehot)
            names += [f"{c}={v}" for v in cats]
        X = np.hstack(blocks)
    for j, n in enumerate(names):
        if n in HEAVY:
            X[:, j] = np.log1p(X[:, j])
    return X, names


def candidates(d: int, quick: bool) -> dict[str, Any]:
    """Detector factories with their benchmark parameters."""
    ep = 8 if quick else 60
    deep = {"epochs": ep, "batch_size": 256, "patience": 6, "progress": False}
    hidden = (64, 32) if d > 40 else (32, 16)
    return {
        "robust_zscore": lambda: detectors.RobustZScore(window=20000, min_scale=0.1),
        "ew_gaussian": lambda: detectors.EWGaussian(alpha=1e-4, shrinkage=1e-2),
        "half_space_trees": lambda: detectors.HalfSpaceTrees(n_trees=25, height=10,
                                                             window_size=2000),
        "loda": lambda: detectors.LODA(n_projections=100, n_bins=30),
        "online_ocsvm": lambda: detectors.OnlineOneClassSVM(nu=0.05, n_components=64),
        "isolation_forest": lambda: detectors.IsolationForest(n_estimators=200),
        "ocsvm": lambda: detectors.OneClassSVM(nu=0.01, max_samples=3000),
        "pca": lambda: detectors.PCAReconstruction(n_components=0.95),
        "lof": lambda: detectors.LOFNovelty(n_neighbors=20, max_samples=10000),
        "kmeans": lambda: detectors.KMeansDistance(n_clusters=16),
        "marginal_tail": lambda: detectors.MarginalTail(tails="upper"),
        # The connection agent's ensemble (there with feature groups; here every column
        # is its own group), fitted in one batch.
        "default_ensemble": lambda: detectors.default_ensemble("connections",
                                                               capacity=20_000),
        "gaussian": lambda: detectors.GaussianDensity(),
        "autoencoder": lambda: detectors.Autoencoder(hidden=hidden, latent_dim=8, **deep),
        "vae": lambda: detectors.VAE(hidden=hidden, latent_dim=8, **deep),
        "seq2seq_lstm": lambda: detectors.Seq2SeqLSTM(hidden_size=16, lr=3e-3,
                                                      **{**deep, "epochs": max(ep // 3, 3)}),
        "novelty_ae": lambda: detectors.NoveltyAutoencoder(hidden=hidden, latent_dim=8, **deep),
        "clustered_ae": lambda: detectors.ClusteredAutoencoder(
            hidden=hidden, latent_dim=8, **{**deep, "epochs": max(ep // 3, 4)},
            round_epochs=ep),
        # Adversarial training wanders more between epochs than an autoencoder's loss:
        # more patience before stopping.
        "bigan": lambda: detectors.BiGAN(hidden=hidden, latent_dim=8, disc_hidden=2 * hidden[0],
                                         **{**deep, "patience": 10}),
    }


def with_overrides(factory: Any, over: dict[str, Any]) -> Any:
    """``factory`` with some constructor parameters replaced (``--params``)."""
    if not over:
        return factory

    def make() -> Any:
        det = factory()
        return type(det)(**{**det.get_params(), **over})

    return make


def n_parameters(det: Any) -> int:
    members = getattr(det, "detectors_", None)
    if members is not None:  # an ensemble: its members' parameters
        return sum(n_parameters(m) for m in members)
    report = getattr(det, "training_report_", None)
    if report:
        return int(report["parameters"])
    total = 0
    for value in det._learned_state().values():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            total += value.size
    model = getattr(det, "model_", None)
    if model is not None and hasattr(model, "estimators_"):
        total += sum(3 * e.tree_.node_count for e in model.estimators_)
    if model is not None and hasattr(model, "_fit_X"):
        total += model._fit_X.size
    river = getattr(det, "river_model_", None)
    if river is not None and hasattr(river, "_weights"):
        total += len(river._weights) + 1
    return int(total)


def size_on_disk(det: Any) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        det.save(Path(tmp) / "m")
        return sum(p.stat().st_size for p in (Path(tmp) / "m").iterdir())


def evaluate(name: str, factory: Any, Xtr: np.ndarray, Xte: np.ndarray, yte: np.ndarray,
             feature_names: list[str]) -> dict[str, Any]:
    det = factory()
    t0 = time.perf_counter()
    det.fit(Xtr, feature_names=feature_names)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = det.score_many(Xte)
    infer = (time.perf_counter() - t0) / len(Xte) * 10_000
    thr, _ = metrics.best_fbeta_threshold(yte, s, beta=1.0)
    rep = metrics.classification_report(yte, s, thr)
    return {"detector": name, "roc_auc": rep["roc_auc"], "ap": rep["average_precision"],
            "precision": rep["precision"], "recall": rep["recall"], "f1": rep["f1"],
            "f2": rep["f2"], "params": n_parameters(det), "size_kb": size_on_disk(det) / 1024,
            "train_s": train_s, "infer_s_10k": infer,
            "kept": getattr(det, "selected_fraction_", None)}


def table(rows: list[dict[str, Any]], title: str) -> str:
    head = ("| detector | ROC AUC | AP | precision | recall | F1 | F2 | params | size KiB | "
            "train s | infer s/10k |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"**{title}**", "", head]
    for r in sorted(rows, key=lambda r: -r["roc_auc"]):
        lines.append(
            f"| {r['detector']} | {r['roc_auc']:.3f} | {r['ap']:.3f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['f1']:.3f} | {r['f2']:.3f} | {r['params']:,} | "
            f"{r['size_kb']:,.0f} | {r['train_s']:.1f} | {r['infer_s_10k']:.3f} |")
    return "\n".join(lines)


def pollution_table(results: dict[float, list[dict[str, Any]]]) -> str:
    levels = sorted(results)
    head = "| detector | " + " | ".join(f"{int(p * 100)} % attacks" for p in levels) + \
        " | AUC drop at 20 % |"
    lines = [head, "|" + "---|" * (len(levels) + 2)]
    by = {p: {r["detector"]: r for r in rows} for p, rows in results.items()}
    names = [r["detector"] for r in sorted(results[levels[0]], key=lambda r: -r["roc_auc"])]
    for n in names:
        aucs = [by[p][n]["roc_auc"] if n in by[p] else float("nan") for p in levels]
        drop = aucs[0] - aucs[-1]
        lines.append(f"| {n} | " + " | ".join(f"{a:.3f}" for a in aucs) + f" | {drop:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test-normal", type=int, default=10000)
    ap.add_argument("--features", default="18,41")
    ap.add_argument("--pollution", default="0,0.05,0.1,0.2")
    ap.add_argument("--pollution-detectors", default="all",
                    help="comma list, or 'all' (pollution runs use the 18 features)")
    ap.add_argument("--detectors", default="all")
    ap.add_argument("--quick", action="store_true", help="few epochs, for a smoke run")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("test", "dev"), default="test",
                    help="dev: score rows drawn from the training pools that no training set "
                         "uses (disjoint from the test pool), for tuning")
    ap.add_argument("--params", type=json.loads, default={},
                    help='JSON overrides per detector, e.g. \'{"bigan": {"alpha": 0.5}}\'')
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    df = load_kdd(args.data)
    rng = np.random.default_rng(args.seed)
    normal_idx = np.flatnonzero(df["anomaly"].to_numpy() == 0)
    attack_idx = np.flatnonzero(df["anomaly"].to_numpy() == 1)
    rng.shuffle(normal_idx)
    rng.shuffle(attack_idx)
    n_hold_n, n_hold_a = int(0.3 * len(normal_idx)), int(0.3 * len(attack_idx))
    test_normal_pool, train_normal_pool = normal_idx[:n_hold_n], normal_idx[n_hold_n:]
    test_attack_pool, train_attack_pool = attack_idx[:n_hold_a], attack_idx[n_hold_a:]
    n_te = args.n_test_normal
    test_idx = np.r_[test_normal_pool[:n_te], test_attack_pool[:n_te]]
    if args.split == "dev":
        # Training sets take the first n_train normal rows and the first (at most 20 %)
        # attack rows of the training pools: the dev rows come from beyond them.
        dev_normal = train_normal_pool[args.n_train : args.n_train + n_te]
        if len(dev_normal) < n_te or len(train_attack_pool) < args.n_train + n_te:
            raise SystemExit("training pools too small for a dev split of this size")
        test_idx = np.r_[dev_normal, train_attack_pool[-n_te:]]
    categories = {c: sorted(df[c].unique()) for c in CATEGORICAL}
    out: list[str] = [
        f"Data: `{args.data.name}`; train {args.n_train:,} rows from 70 % of the normal rows; "
        f"{'dev' if args.split == 'dev' else 'test'} {n_te:,} held-out normal + {n_te:,} "
        f"held-out attack rows (seed {args.seed}).", ""]

    levels = [float(p) for p in args.pollution.split(",")]
    feature_sets = args.features.split(",")
    pollution_results: dict[float, list[dict[str, Any]]] = {}
    for fs in feature_sets:
        for p in levels if fs == "18" else [0.0]:
            n_att = round(p * args.n_train)
            train_idx = np.r_[train_normal_pool[: args.n_train - n_att],
                              train_attack_pool[:n_att]]
            rng.shuffle(train_idx)
            Xtr, names = features(df.iloc[train_idx], fs, categories)
            Xte, _ = features(df.iloc[test_idx], fs, categories)
            yte = df["anomaly"].to_numpy()[test_idx]
            cands = candidates(Xtr.shape[1], args.quick)
            wanted = args.detectors if p == 0 else args.pollution_detectors
            if wanted != "all":
                cands = {k: v for k, v in cands.items() if k in wanted.split(",")}
            cands = {k: with_overrides(v, args.params.get(k, {})) for k, v in cands.items()}
            rows = []
            for name, factory in cands.items():
                t0 = time.perf_counter()
                r = evaluate(name, factory, Xtr, Xte, yte, names)
                rows.append(r)
                print(f"[{fs} features, {p:.0%} attacks] {name:18s} AUC {r['roc_auc']:.3f} "
                      f"AP {r['ap']:.3f} F1 {r['f1']:.3f} ({time.perf_counter() - t0:.1f} s)"
                      + (f" kept {r['kept']}" if r["kept"] else ""), flush=True)
            if p == 0:
                kind = "continuous features" if fs == "18" else "fields, categoricals one-hot"
                title = f"{fs} {kind}, clean training ({Xtr.shape[1]} columns)"
                out += [table(rows, title), ""]
                print("\n" + table(rows, title) + "\n", flush=True)
            if fs == "18":
                pollution_results[p] = rows
    if len(pollution_results) > 1:
        out += ["**ROC AUC with attacks mixed into the training data (18 features)**", "",
                pollution_table(pollution_results), ""]
        print(pollution_table(pollution_results))
    out.append(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s on "
               f"{torch.get_num_threads()} torch thread(s).")
    print(out[-1])
    if args.markdown:
        args.markdown.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
