"""numpy-cnn's convolution (im2col, components/scratch/conv.py) against torch's CPU conv2d: forward + backward.

    python benchmarks/numpy_cnn_vs_torch.py [--repeats 30] [--no-write]
    OMP_NUM_THREADS=2 python benchmarks/numpy_cnn_vs_torch.py     # both libraries on 2 threads

Both sides compute the same thing in float32: the output, then the gradients for the input, the weights
and the bias from the same upstream gradient (their results are compared, so a fast wrong answer cannot
win). Each shape is timed ``repeats`` times after warm-up, NumPy and torch alternating so both see the
same background load; the median is reported. Threads: both libraries use OMP_NUM_THREADS (default 1:
one core each is the fairest comparison and the least disturbed by other jobs); the table says how many.
The table replaces the "## NumPy CNN vs torch (CPU)" section of benchmarks/RESULTS.md. Needs only numpy
and torch.
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
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results_md import load_average, write_section  # noqa: E402
from components.scratch.conv import conv_backward, conv_forward  # noqa: E402

HEADING = "## NumPy CNN vs torch (CPU)"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# (N, C, H, W, filters, kernel, stride, padding): numpy-cnn's own layers on 8x8 digits first, then larger images
SHAPES = [
    (32, 1, 8, 8, 16, 3, 1, 1),
    (32, 16, 8, 8, 32, 3, 1, 1),
    (32, 3, 32, 32, 32, 3, 1, 1),
    (16, 32, 32, 32, 64, 3, 2, 1),
    (8, 3, 64, 64, 16, 5, 1, 2),
]


def median_seconds(steps, repeats: int, warmup: int = 3) -> list[float]:
    """Median time of each step, the steps run alternately (a burst of background load hits all of them)."""
    for _ in range(warmup):
        for step in steps:
            step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, recorded in zip(steps, times):
            start = time.perf_counter()
            step()
            recorded.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench(shape, repeats: int, rng: np.random.Generator) -> dict:
    n, c, h, w, f, k, s, p = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    W = (rng.standard_normal((f, c, k, k)) * np.sqrt(2 / (c * k * k))).astype(np.float32)
    b = np.zeros(f, dtype=np.float32)
    out, _ = conv_forward(x, W, b, s, p)
    dout = rng.standard_normal(out.shape).astype(np.float32)

    def numpy_step():
        _, cache = conv_forward(x, W, b, s, p)
        return conv_backward(dout, cache, W)

    xt, Wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, W, b))
    dt_ = torch.from_numpy(dout)

    def torch_step():
        o = F.conv2d(xt, Wt, bt, stride=s, padding=p)
        return torch.autograd.grad(o, (xt, Wt, bt), dt_)

    ours, theirs = numpy_step(), [g.numpy() for g in torch_step()]
    error = max(float(np.max(np.abs(a - t)) / (np.max(np.abs(t)) + 1e-12)) for a, t in zip(ours, theirs))
    t_np, t_torch = median_seconds([numpy_step, torch_step], repeats)
    return {
        "shape": shape,
        "numpy_ms": 1e3 * t_np,
        "torch_ms": 1e3 * t_torch,
        "ratio": t_np / t_torch,
        "max_rel_diff": error,
    }


def table(rows: list[dict], repeats: int, load_before, load_after) -> str:
    cpus = os.cpu_count()
    busy = max(x for x in (load_before, load_after) if x is not None) if load_before is not None else None
    shared = (
        f" Load average {load_before:.1f} before / {load_after:.1f} after on {cpus} cores: other jobs shared "
        "the cores, so the times are inflated and noisy (the two libraries alternate, so both see the same load, "
        "but on the day of the table reruns under this load moved single ratios by up to 3x: rerun on a quiet "
        "machine for firm numbers)."
        if busy is not None and busy > 0.5 * (cpus or 1)
        else ""
    )
    lines = [
        HEADING,
        "",
        f"Forward + backward (output, then d input, d weights, d bias) of one convolution layer, float32, median "
        f"of {repeats} repeats after 3 warm-ups. Machine: {platform.machine()} CPU with {cpus} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s) each (OMP_NUM_THREADS); {dt.date.today().isoformat()}.{shared} "
        f"`python benchmarks/numpy_cnn_vs_torch.py`.",
        "",
        "| N x C x H x W | filters x k x k | stride | padding | numpy-cnn (ms) | torch conv2d (ms) | numpy / torch | max rel. diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        n, c, h, w, f, k, s, p = r["shape"]
        lines.append(
            f"| {n} x {c} x {h} x {w} | {f} x {k} x {k} | {s} | {p} | {r['numpy_ms']:.2f} | "
            f"{r['torch_ms']:.2f} | {r['ratio']:.1f}x | {r['max_rel_diff']:.1e} |"
        )
    lines += [
        "",
        "numpy-cnn copies every window into one matrix (im2col: a strided view, then one copy) and multiplies "
        "once; its backward scatters the window gradients back with a loop over the k x k kernel offsets. "
        "*max rel. diff*: the largest difference between the two libraries' output and gradients, relative "
        "to torch's largest value (float32 rounding).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    load_before = load_average()
    rows = []
    for shape in SHAPES:
        rows.append(bench(shape, args.repeats, rng))
        r = rows[-1]
        print(
            f"{shape}: numpy {r['numpy_ms']:.2f} ms, torch {r['torch_ms']:.2f} ms, x{r['ratio']:.1f}, "
            f"diff {r['max_rel_diff']:.1e}",
            flush=True,
        )
    text = table(rows, args.repeats, load_before, load_average())
    print(text)
    if not args.no_write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
