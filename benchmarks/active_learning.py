"""Active-learning benchmark: every query strategy against random on Fashion-MNIST, several seeds.

    OMP_NUM_THREADS=1 python benchmarks/active_learning.py            # default: ~20 min on a 2-core CPU
    python benchmarks/active_learning.py --large --workers 12         # a GPU machine (Gal et al.-sized runs)
    python benchmarks/active_learning.py --large --from-curves DIR    # the table again from a run's saved curves

Each run starts from the same stratified labelled set (per seed), queries the preset's items per round from a
pool of ``--pool`` training images, retrains the MC-dropout CNN from scratch and records test accuracy. The
reference "all labels" accuracy is the same model trained on the whole pool. Every fit trains on all the labels
it has for a fixed number of epochs (no held-out slice: with 20 labels, early stopping would spend half of them
on validation and pick an epoch by a handful of points). A strategy's label efficiency at a
target (a fraction of that reference accuracy) is the labels it needed divided by the labels random needed,
per seed; the table gives mean ± std over seeds. Writes benchmarks/results/active_learning[_large]_{curves.csv,
summary.csv,full.json,curves.png} and the "## Active learning" section of benchmarks/RESULTS.md.

Needs torch, numpy, scikit-learn, pandas, matplotlib and modAL (pure Python, carried where not installed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.active.loop import simulate  # noqa: E402
from components.active.report import efficiency_table, format_ratio, learning_curve_figure  # noqa: E402
from components.active.strategies import STRATEGIES  # noqa: E402
from components.data.formats.idx import FASHION_MNIST, load_mnist  # noqa: E402
from components.projects.settings.image_classification import ModelSettings  # noqa: E402
from components.settings import TrainSettings  # noqa: E402
from components.training.estimators import TorchImageClassifier  # noqa: E402

HEADING = "## Active learning"
PRESETS = {  # CPU default: about 20 minutes on 2 cores; --large: Gal et al. (2017)-sized, for a GPU
    "default": dict(
        pool=3000,
        test=2000,
        initial=20,
        schedule=((25, 14),),
        mc_samples=10,
        candidates=500,
        epochs=20,
        batch_size=32,
        seeds=3,
        fractions=(0.85, 0.9),
        model={},
        network="mc_dropout_cnn",
        prior_l2=0.0,
    ),
    # Gal et al. (2017)'s protocol and network's dropout rates: 10 labels a round, T = 20 passes over 2,000 random
    # pool candidates, 50 epochs, dropout 0.25 after the convolutions and 0.5 before the last layer. Past 1,020
    # labels, rounds of 50 and then 250, so that random reaches the 95% target within the budget (it had not at
    # 2,020 labels: 0.861 against a target of 0.866).
    "large": dict(
        pool=20000,
        test=10000,
        initial=20,
        schedule=((10, 100), (50, 20), (250, 4)),
        mc_samples=20,
        candidates=2000,
        epochs=50,
        batch_size=64,
        seeds=3,
        fractions=(0.9, 0.95),
        model=dict(conv_dropout=0.25, dropout=0.5),
        network="mc_dropout_cnn",
        prior_l2=0.0,
    ),
}


def query_sizes(schedule) -> list[int]:
    """((size, rounds), ...) -> one query size per round."""
    return [size for size, rounds in schedule for _ in range(rounds)]


def describe(schedule) -> str:
    return ", then ".join(f"{rounds} rounds of {size}" for size, rounds in schedule)


def estimator(
    epochs: int,
    batch_size: int,
    seed: int,
    device: str,
    model: dict,
    network: str = "mc_dropout_cnn",
    prior_l2: float = 0.0,
) -> TorchImageClassifier:
    train = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        lr=3e-3,
        weight_decay=0.0 if prior_l2 else 1e-4,
        schedule="onecycle",
        amp=False,
    )
    return TorchImageClassifier(
        model=ModelSettings(name=network, kwargs=model),
        train=train,
        val_fraction=0.0,
        augmentation="none",
        mean=(0.286,),
        std=(0.353,),
        device=device,
        seed=seed,
        progress=False,
        prior_l2=prior_l2,
    )


def load(data_dir: Path, pool: int, test: int, seed: int = 0):
    X, y, X_test, y_test = load_mnist(data_dir)
    rng = np.random.default_rng(seed)
    p, t = rng.choice(len(y), pool, replace=False), rng.choice(len(y_test), test, replace=False)
    return X[p, ..., None], y[p], X_test[t, ..., None], y_test[t]


def one_run(job: dict) -> pd.DataFrame:
    import torch

    torch.set_num_threads(job["threads"])
    X, y, X_test, y_test = load(job["data_dir"], job["pool"], job["test"])
    est = estimator(
        job["epochs"], job["batch_size"], job["seed"], job["device"], job["model"], job["network"], job["prior_l2"]
    )
    started = time.perf_counter()
    curve = simulate(
        est,
        job["strategy"],
        X,
        y,
        X_test,
        y_test,
        initial=job["initial"],
        query_size=query_sizes(job["schedule"]),
        n_samples=job["mc_samples"],
        seed=job["seed"],
        candidates=job["candidates"],
    )
    print(
        f"{job['strategy']:>16} seed {job['seed']}: {curve.rounds[-1].labels} labels -> "
        f"acc {curve.rounds[-1].accuracy:.3f} ({time.perf_counter() - started:.0f}s)",
        flush=True,
    )
    return curve.frame()


def full_accuracy(job: dict) -> float:
    import torch

    torch.set_num_threads(job["threads"])
    X, y, X_test, y_test = load(job["data_dir"], job["pool"], job["test"])
    est = estimator(
        job["epochs"], job["batch_size"], job["seed"], job["device"], job["model"], job["network"], job["prior_l2"]
    )
    return float(est.fit(X, y).score(X_test, y_test))


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


def machine(device: str) -> str:
    """Where the runs trained, in words, for RESULTS.md."""
    gpu = ""
    if device == "cuda":
        import torch

        gpu = f"{torch.cuda.get_device_name(0)}, "
    shared = "; a shared 2-core CPU with other jobs running, niced" if device == "cpu" else ""
    return f"{device} ({gpu}{platform.machine()}, {os.cpu_count()} cores visible{shared})"


def markdown(summary: pd.DataFrame, full: list[float], cfg: dict, args, minutes: float, where: str) -> str:
    strategies = list(dict.fromkeys(summary["strategy"]))
    fractions = cfg["fractions"]
    head = (
        "| strategy | " + " | ".join(f"labels to {f:.0%} of all-label acc. | ratio to random" for f in fractions) + " |"
    )
    lines = [head, "|" + " --- |" * (1 + 2 * len(fractions))]
    for s in strategies:
        cells = []
        for f in fractions:
            row = summary[(summary["strategy"] == s) & (summary["fraction"] == f)].iloc[0]
            labels = (
                "not reached"
                if row["reached"] == 0
                else f"{row['labels_mean']:.0f} ± {row['labels_std']:.0f}"
                + ("" if row["reached"] == row["runs"] else f" ({row['reached']}/{row['runs']} runs)")
            )
            cells += [labels, format_ratio(row)]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    budget = cfg["initial"] + sum(query_sizes(cfg["schedule"]))
    dropout = f", dropout {cfg['model']['conv_dropout']} / {cfg['model']['dropout']}" if cfg["model"] else ""
    if cfg["prior_l2"]:
        dropout += f", weight prior c / N with c = {cfg['prior_l2']:g} on the dense layers instead of weight decay"
    return "\n".join(
        [
            preset_heading(args),
            "",
            f"`{command_line(args)}` on Fashion-MNIST "
            f"(offline stand-in for MNIST): pool of {cfg['pool']} training images, {cfg['test']} test images, "
            f"{cfg['initial']} stratified initial labels, {describe(cfg['schedule'])} "
            f"(budget {budget} labels), MC-dropout CNN (`{cfg['network']}`{dropout}) retrained from scratch on all its labels for "
            f"{cfg['epochs']} epochs (batch {cfg['batch_size']}) each round, T = {cfg['mc_samples']} MC passes over {cfg['candidates']} random pool candidates "
            f"per round, {cfg['seeds']} seeds (mean ± std over seeds).",
            "",
            f"All-label accuracy (same model on the whole pool): {np.mean(full):.3f} ± {np.std(full):.3f}. "
            "Targets are fractions of it; ratio = labels the strategy needed / labels random needed (same seed); "
            "below 1 is better.",
            "",
            *lines,
            "",
            f"Ran on {where}, {args.workers} worker(s), {minutes:.0f} min wall. "
            f"Curves: `benchmarks/results/{stem(args)}_curves.csv` and `.png`, table: `{stem(args)}_summary.csv`.",
            "",
        ]
    )


def command_line(args) -> str:
    """The benchmark's command for RESULTS.md: the flags that change what ran, not where it ran."""
    parts = ["python benchmarks/active_learning.py"] + (["--large"] if args.large else [])
    if list(args.strategies) != ["random", *[s for s in STRATEGIES if s != "random"]]:
        parts += ["--strategies", *args.strategies]
    parts += [
        f"--{flag} {value}"
        for flag, value in (
            ("network", args.network),
            ("prior", args.prior),
            ("mc-samples", args.mc_samples),
            ("tag", args.tag),
        )
        if value
    ]
    return " ".join(parts)


def stem(args) -> str:
    """File names per preset (and --tag), so the default and --large results live side by side."""
    return ("active_learning_large" if args.large else "active_learning") + (f"_{args.tag}" if args.tag else "")


def preset_heading(args) -> str:
    return f"### `{'--large' if args.large else 'default'}{' --tag ' + args.tag if args.tag else ''}`"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", action="store_true", help="Gal et al.-sized runs (for a GPU)")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--seeds", type=int, help="number of seeds (preset's unless given)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--mc-samples", type=int, help="T, the MC-dropout passes (preset's unless given)")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="only the given strategies: no random run, no all-label reference (to add curves to a run)",
    )
    p.add_argument("--workers", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--network", help="model to train (preset's unless given), e.g. gal_cnn")
    p.add_argument("--prior", type=float, help="c of the c / N weight prior (TorchImageClassifier.prior_l2)")
    p.add_argument("--tag", default="", help="suffix for the result files and RESULTS.md heading of a variant")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument(
        "--from-curves",
        type=Path,
        metavar="DIR",
        help="no training: rebuild the table from DIR/<stem>_{curves.csv,full.json}",
    )
    args = p.parse_args(argv)
    cfg = dict(PRESETS["large" if args.large else "default"])
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.mc_samples is not None:
        cfg["mc_samples"] = args.mc_samples
    if args.network is not None:
        cfg["network"] = args.network
    if args.prior is not None:
        cfg["prior_l2"] = args.prior
    if "random" not in args.strategies and not args.no_baseline:
        args.strategies.insert(0, "random")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.from_curves:
        curves = pd.read_csv(args.from_curves / f"{stem(args)}_curves.csv")
        meta = json.loads((args.from_curves / f"{stem(args)}_full.json").read_text())
        full, minutes, args.workers, where = meta["full"], meta["minutes"], meta["workers"], meta["where"]
    else:
        curves, full = run_all(args, cfg)
        minutes = (time.perf_counter() - started) / 60
        if args.no_baseline:  # nothing to divide by: the curves wait in --out to be merged with a baseline run
            print(f"curves in {args.out / stem(args)}_curves.csv (no baseline: no table)")
            return 0
        where = machine(args.device if args.device != "auto" else ("cuda" if _cuda() else "cpu"))
    print(f"all-label accuracy per seed: {[round(a, 4) for a in full]}", flush=True)
    summary = efficiency_table(curves, float(np.mean(full)), cfg["fractions"])
    curves.to_csv(args.out / f"{stem(args)}_curves.csv", index=False)
    summary.to_csv(args.out / f"{stem(args)}_summary.csv", index=False)
    fig = learning_curve_figure(
        curves,
        float(np.mean(full)),
        cfg["fractions"],
        title="Fashion-MNIST: test accuracy against labels (mean ± std over seeds)",
    )
    fig.savefig(args.out / f"{stem(args)}_curves.png", dpi=110)
    text = markdown(summary, full, cfg, args, minutes, where)
    write_section(args.results, text, preset_heading(args))
    print(text)
    return 0


def run_all(args, cfg: dict) -> tuple[pd.DataFrame, list[float]]:
    """Every (seed, strategy) run plus the all-label reference per seed. Curves are saved as runs finish, so a
    run cut short by a time limit still leaves every finished curve (rebuild the table with --from-curves)."""
    device = args.device if args.device != "auto" else ("cuda" if _cuda() else "cpu")
    threads = max(1, (os.cpu_count() or 1) // args.workers) if _cuda() or args.workers > 1 else 1
    base = dict(
        data_dir=args.data_dir,
        pool=cfg["pool"],
        test=cfg["test"],
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        model=cfg["model"],
        network=cfg["network"],
        prior_l2=cfg["prior_l2"],
        device=args.device,
        threads=threads,
    )
    seeds = range(args.first_seed, args.first_seed + cfg["seeds"])
    jobs = [
        dict(
            base,
            strategy=s,
            seed=seed,
            initial=cfg["initial"],
            schedule=cfg["schedule"],
            mc_samples=cfg["mc_samples"],
            candidates=cfg["candidates"],
        )
        for seed in seeds
        for s in args.strategies
    ]
    full_jobs = [] if args.no_baseline else [dict(base, seed=seed) for seed in seeds]
    started = time.perf_counter()
    frames: list[pd.DataFrame] = []
    full: list[float] = []

    def save() -> None:
        if frames:
            pd.concat(frames, ignore_index=True).to_csv(args.out / f"{stem(args)}_curves.csv", index=False)
        meta = dict(
            full=full, minutes=(time.perf_counter() - started) / 60, workers=args.workers, where=machine(device)
        )
        (args.out / f"{stem(args)}_full.json").write_text(json.dumps(meta))

    if args.workers > 1:
        # spawn: CUDA cannot be used in a forked child once the parent has touched it
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(full_accuracy, j): "full" for j in full_jobs}
            futures.update({pool.submit(one_run, j): "run" for j in jobs})
            for done in as_completed(futures):
                (full if futures[done] == "full" else frames).append(done.result())
                save()
    else:
        for j in full_jobs:
            full.append(full_accuracy(j))
        for j in jobs:
            frames.append(one_run(j))
            save()
    order = {s: i for i, s in enumerate(args.strategies)}
    curves = pd.concat(frames, ignore_index=True)
    curves = curves.sort_values(
        ["seed", "strategy", "round"],
        key=lambda c: c.map(order) if c.name == "strategy" else c,
        kind="stable",
        ignore_index=True,
    )
    return curves, full


if __name__ == "__main__":
    sys.exit(main())
