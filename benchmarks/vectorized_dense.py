"""The NumPy dense layer (components/scratch/layers.py) vectorised against explicit Python loops: forward + backward.

    python benchmarks/vectorized_dense.py [--repeats 5] [--no-write]

The course's first lesson on vectorisation, measured on the layer numpy-dnn trains with: ``out = x @ W + b``
and its gradients ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = sum(dout)``, computed three ways from the
same inputs in float64: explicit loops over samples, units and inputs (every multiply-add a Python
operation), a loop over samples with one vector product each, and the vectorised layer (one matrix product
per term). The three results are compared, so a fast wrong answer cannot win. Median of ``repeats`` after one
warm-up, in CPU time of the process (time.process_time: on shared cores, waiting for them does not count); NumPy
on 1 thread (OMP_NUM_THREADS, default 1). The table replaces the section
"## NumPy dense layer: vectorised vs explicit loops" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results_md import load_average, write_section  # noqa: E402
from components.scratch.layers import dense_backward, dense_forward  # noqa: E402

HEADING = "## NumPy dense layer: vectorised vs explicit loops"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHAPES = [(16, 64, 32), (64, 128, 64), (128, 784, 32)]  # (samples, inputs, units); the last: one MNIST minibatch


def explicit_loops(x, W, b, dout):
    n, k = x.shape
    m = W.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            total = b[j]
            for t in range(k):
                total += x[i, t] * W[t, j]
            out[i, j] = total
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros_like(b)
    for i in range(n):
        for j in range(m):
            g = dout[i, j]
            db[j] += g
            for t in range(k):
                dx[i, t] += g * W[t, j]
                dW[t, j] += x[i, t] * g
    return out, dx, dW, db


def per_sample(x, W, b, dout):
    out = np.stack([row @ W + b for row in x])
    dx = np.stack([W @ g for g in dout])
    dW = sum(np.outer(row, g) for row, g in zip(x, dout))
    db = sum(dout)
    return out, dx, dW, db


def vectorised(x, W, b, dout):
    out, cache = dense_forward(x, W, b)
    dx, dW, db = dense_backward(dout, cache, W)
    return out, dx, dW, db


def timed(fn, args, repeats: int) -> tuple[float, tuple]:
    result = fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()  # CPU time of this process: what other jobs on shared cores do not inflate
        fn(*args)
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000, result


def bench(shape, repeats: int, rng) -> dict:
    n, k, m = shape
    x, W, b, dout = rng.normal(size=(n, k)), rng.normal(size=(k, m)), rng.normal(size=m), rng.normal(size=(n, m))
    args = (x, W, b, dout)
    loop_ms, loop = timed(explicit_loops, args, max(1, repeats // 2) if n * k * m > 500_000 else repeats)
    sample_ms, sample = timed(per_sample, args, repeats)
    vec_ms, vec = timed(vectorised, args, repeats * 20)
    diff = max(
        float(np.max(np.abs(a - v)) / max(1e-12, np.max(np.abs(v)))) for r in (loop, sample) for a, v in zip(r, vec)
    )
    return {"shape": shape, "loop_ms": loop_ms, "sample_ms": sample_ms, "vec_ms": vec_ms, "max_rel_diff": diff}


def table(rows: list[dict], repeats: int, load_before, load_after) -> str:
    cpus = os.cpu_count()
    loaded = load_before is not None and max(load_before, load_after or 0) > 0.5 * (cpus or 1)
    lines = [
        HEADING,
        "",
        f"Forward + backward of one dense layer (out = x W + b; dx, dW, db), float64, median of {repeats} repeats "
        f"(the explicit loops fewer on the largest shape) after a warm-up, CPU time of the process "
        f"(`time.process_time`). Machine: {platform.machine()} CPU with "
        f"{cpus} cores, Python {platform.python_version()}, NumPy {np.__version__}, {THREADS} thread(s) "
        f"(OMP_NUM_THREADS); {dt.date.today().isoformat()}."
        + (
            f" Load average {load_before:.1f} before / {load_after:.1f} after: other jobs shared the cores; CPU "
            "time leaves out the waiting, not the cache and memory traffic they cause, so read the ratios."
            if loaded
            else ""
        )
        + " `python benchmarks/vectorized_dense.py`.",
        "",
        "| samples x inputs x units | explicit loops (ms) | loop over samples (ms) | vectorised (ms) | loops / vectorised | max rel. diff |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        n, k, m = r["shape"]
        lines.append(
            f"| {n} x {k} x {m} | {r['loop_ms']:.1f} | {r['sample_ms']:.2f} | {r['vec_ms']:.3f} | "
            f"{r['loop_ms'] / r['vec_ms']:,.0f}x | {r['max_rel_diff']:.1e} |"
        )
    lines += [
        "",
        "*explicit loops*: every multiply-add of the forward and the backward pass is a Python operation; *loop "
        "over samples*: one NumPy vector-matrix product per sample, as a per-example implementation would do; "
        "*vectorised*: components/scratch/layers.py (`dense_forward` / `dense_backward`), one matrix product per "
        "term over the whole batch, as numpy-dnn trains. *max rel. diff*: the largest difference of the loops' "
        "output and gradients from the vectorised ones, relative to the largest vectorised value.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    load_before = load_average()
    rows = []
    for shape in SHAPES:
        rows.append(bench(shape, args.repeats, rng))
        r = rows[-1]
        print(
            f"{shape}: loops {r['loop_ms']:.1f} ms, per sample {r['sample_ms']:.2f} ms, vectorised "
            f"{r['vec_ms']:.3f} ms (x{r['loop_ms'] / r['vec_ms']:,.0f}), diff {r['max_rel_diff']:.1e}",
            flush=True,
        )
    text = table(rows, args.repeats, load_before, load_average())
    print(text)
    if not args.no_write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
