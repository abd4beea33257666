"""Active-learning benchmark: every query strategy against random on Fashion-MNIST, several seeds.

    OMP_NUM_THREADS=1 python benchmarks/active_learning.py            # default: ~20 min on a 2-core CPU
    python benchmarks/active_learning.py --large --workers 12         # a GPU machine (Gal et al.-sized runs)

Each run starts from the same stratified labelled set (per seed), queries ``--query`` items per round from a
pool of ``--pool`` training images, retrains the MC-dropout CNN from scratch and records test accuracy. The
reference "all labels" accuracy is the same model trained on the whole pool. A strategy's label efficiency at a
target (a fraction of that reference accuracy) is the labels it needed divided by the labels random needed,
per seed; the table gives mean ± std over seeds. Writes benchmarks/results/active_learning_{curves.csv,
summary.csv,curves.png} and the "## Active learning" section of benchmarks/RESULTS.md.

Needs torch, numpy, scikit-learn, pandas, matplotlib and modAL (pure Python, carried where not installed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.active import simulate  # noqa: E402
from components.active_report import efficiency_table, format_ratio, learning_curve_figure  # noqa: E402
from components.active_strategies import STRATEGIES  # noqa: E402
from components.data.idx import FASHION_MNIST, load_mnist  # noqa: E402
from components.estimators import TorchImageClassifier  # noqa: E402

HEADING = "## Active learning"
PRESETS = {  # CPU default: about 20 minutes on 2 cores; --large: Gal et al. (2017)-sized, for a GPU
    "default": dict(pool=3000, test=2000, initial=20, query=25, rounds=14, mc_samples=10, candidates=500,
                    epochs=20, seeds=3, fractions=(0.85, 0.9)),
    "large": dict(pool=20000, test=10000, initial=20, query=25, rounds=40, mc_samples=20, candidates=2000,
                  epochs=50, seeds=3, fractions=(0.85, 0.9)),
}


def estimator(epochs: int, seed: int, device: str) -> TorchImageClassifier:
    return TorchImageClassifier(model="mc_dropout_cnn", epochs=epochs, batch_size=32, lr=3e-3, weight_decay=1e-4,
                                schedule="onecycle", patience=epochs, augmentation="none", amp=False,
                                mean=(0.286,), std=(0.353,), device=device, seed=seed, progress=False)


def load(data_dir: Path, pool: int, test: int, seed: int = 0):
    X, y, X_test, y_test = load_mnist(data_dir)
    rng = np.random.default_rng(seed)
    p, t = rng.choice(len(y), pool, replace=False), rng.choice(len(y_test), test, replace=False)
    return X[p, ..., None], y[p], X_test[t, ..., None], y_test[t]


def one_run(job: dict) -> pd.DataFrame:
    import torch

    torch.set_num_threads(job["threads"])
    X, y, X_test, y_test = load(job["data_dir"], job["pool"], job["test"])
    est = estimator(job["epochs"], job["seed"], job["device"])
    started = time.perf_counter()
    curve = simulate(est, job["strategy"], X, y, X_test, y_test, initial=job["initial"], query_size=job["query"],
                     rounds=job["rounds"], n_samples=job["mc_samples"], seed=job["seed"],
                     candidates=job["candidates"])
    print(f"{job['strategy']:>16} seed {job['seed']}: {curve.rounds[-1].labels} labels -> "
          f"acc {curve.rounds[-1].accuracy:.3f} ({time.perf_counter() - started:.0f}s)", flush=True)
    return curve.frame()


def full_accuracy(job: dict) -> float:
    import torch

    torch.set_num_threads(job["threads"])
    X, y, X_test, y_test = load(job["data_dir"], job["pool"], job["test"])
    return float(estimator(job["epochs"], job["seed"], job["device"]).fit(X, y).score(X_test, y_test))


def write_section(path: Path, text: str, heading: str = HEADING) -> None:
    """Replace the block that starts with ``heading`` in RESULTS.md (up to the next heading of the same or a
    higher level), or add it: at the end of this benchmark's section for a '### ' block, else at the end."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if HEADING not in old:
        old = old.rstrip("\n") + "\n\n" + HEADING + "\n"
    level = heading.split(" ")[0]
    ends = ["\n## "] if level == "##" else ["\n## ", "\n### "]
    start = min([i for i in (old.find(heading + " "), old.find(heading + "\n")) if i >= 0], default=-1)
    if start < 0:  # a new subsection goes at the end of this benchmark's section
        section = old.find(HEADING)
        nxt = old.find("\n## ", section + len(HEADING))
        start = end = nxt + 1 if nxt >= 0 else len(old)
        text = ("\n" if end == len(old) else "") + text
    else:
        found = [i for i in (old.find(e, start + len(heading)) for e in ends) if i >= 0]
        end = min(found) + 1 if found else len(old)
    text = text.rstrip("\n") + "\n\n"
    path.write_text((old[:start] + text + old[end:]).rstrip("\n") + "\n")


def markdown(summary: pd.DataFrame, full: list[float], cfg: dict, args, minutes: float) -> str:
    strategies = list(dict.fromkeys(summary["strategy"]))
    fractions = cfg["fractions"]
    head = "| strategy | " + " | ".join(
        f"labels to {f:.0%} of all-label acc. | ratio to random" for f in fractions) + " |"
    lines = [head, "|" + " --- |" * (1 + 2 * len(fractions))]
    for s in strategies:
        cells = []
        for f in fractions:
            row = summary[(summary["strategy"] == s) & (summary["fraction"] == f)].iloc[0]
            labels = ("not reached" if row["reached"] == 0 else
                      f"{row['labels_mean']:.0f} ± {row['labels_std']:.0f}" +
                      ("" if row["reached"] == row["runs"] else f" ({row['reached']}/{row['runs']} runs)"))
            cells += [labels, format_ratio(row)]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    budget = cfg["initial"] + cfg["rounds"] * cfg["query"]
    device = args.device if args.device != "auto" else ("cuda" if _cuda() else "cpu")
    return "\n".join([
        preset_heading(args), "",
        f"`python benchmarks/active_learning.py{' --large' if args.large else ''}` on Fashion-MNIST "
        f"(offline stand-in for MNIST): pool of {cfg['pool']} training images, {cfg['test']} test images, "
        f"{cfg['initial']} stratified initial labels, {cfg['query']} per round, {cfg['rounds']} rounds "
        f"(budget {budget} labels), MC-dropout CNN (`mc_dropout_cnn`) retrained from scratch for {cfg['epochs']} "
        f"epochs each round, T = {cfg['mc_samples']} MC passes over {cfg['candidates']} random pool candidates "
        f"per round, {cfg['seeds']} seeds (mean ± std over seeds).",
        "",
        f"All-label accuracy (same model on the whole pool): {np.mean(full):.3f} ± {np.std(full):.3f}. "
        "Targets are fractions of it; ratio = labels the strategy needed / labels random needed (same seed); "
        "below 1 is better.",
        "",
        *lines,
        "",
        f"Ran on {device} ({platform.machine()}, {os.cpu_count()} cores visible"
        f"{'; a shared 2-core CPU with other jobs running, niced' if device == 'cpu' else ''}), "
        f"{args.workers} worker(s), {minutes:.0f} min wall. Curves: `benchmarks/results/active_learning_curves.csv` "
        "and `.png`.",
        "",
    ])


def preset_heading(args) -> str:
    return f"### `{'--large' if args.large else 'default'}`"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", action="store_true", help="Gal et al.-sized runs (for a GPU)")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--seeds", type=int, help="number of seeds (preset's unless given)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--workers", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = p.parse_args(argv)
    cfg = dict(PRESETS["large" if args.large else "default"])
    cfg.update({k: v for k, v in (("seeds", args.seeds), ("rounds", args.rounds)) if v is not None})
    if "random" not in args.strategies:
        args.strategies.insert(0, "random")
    threads = max(1, (os.cpu_count() or 1) // args.workers) if _cuda() or args.workers > 1 else 1
    base = dict(data_dir=args.data_dir, pool=cfg["pool"], test=cfg["test"], epochs=cfg["epochs"], device=args.device,
                threads=threads)
    jobs = [dict(base, strategy=s, seed=seed, initial=cfg["initial"], query=cfg["query"], rounds=cfg["rounds"],
                 mc_samples=cfg["mc_samples"], candidates=cfg["candidates"])
            for seed in range(cfg["seeds"]) for s in args.strategies]
    started = time.perf_counter()
    full_jobs = [dict(base, seed=seed) for seed in range(cfg["seeds"])]
    if args.workers > 1:
        # spawn: CUDA cannot be used in a forked child once the parent has touched it
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            full_f = [pool.submit(full_accuracy, j) for j in full_jobs]
            frames = list(pool.map(one_run, jobs))
            full = [f.result() for f in full_f]
    else:
        full = [full_accuracy(j) for j in full_jobs]
        frames = [one_run(j) for j in jobs]
    print(f"all-label accuracy per seed: {[round(a, 4) for a in full]}", flush=True)
    curves = pd.concat(frames, ignore_index=True)
    summary = efficiency_table(curves, float(np.mean(full)), cfg["fractions"])
    args.out.mkdir(parents=True, exist_ok=True)
    curves.to_csv(args.out / "active_learning_curves.csv", index=False)
    summary.to_csv(args.out / "active_learning_summary.csv", index=False)
    fig = learning_curve_figure(curves, float(np.mean(full)), cfg["fractions"],
                                title="Fashion-MNIST: test accuracy against labels (mean ± std over seeds)")
    fig.savefig(args.out / "active_learning_curves.png", dpi=110)
    text = markdown(summary, full, cfg, args, (time.perf_counter() - started) / 60)
    write_section(args.results, text, preset_heading(args))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
