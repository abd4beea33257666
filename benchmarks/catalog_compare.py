"""Each torch project's GPU training (rows of benchmarks/catalog_cuda.py) beside its CPU training from the same
params (``train.seconds`` and the primary metric in ``outputs/P/metrics.json``, written by a `make run`).

    python benchmarks/catalog_compare.py benchmarks/results/catalog_cuda_h200_2026-12-02.jsonl --tag defaults
    python benchmarks/catalog_compare.py ROWS.jsonl --pick happy-house=b4l2 --outputs /path/to/outputs

``--tag`` picks each project's rows of one configuration (``--pick P=TAG`` another for one project); of several
seeds the project's own (params.yaml's) seed is shown; of ``--repeats`` the first run (what a stage, one process, pays). Prints a markdown table: GPU s, CPU s, speed-up (CPU s / GPU s),
GPU metric, CPU metric, and whether the row meets the goal (>= 10x with the same or better metric, here: within
the metric's rounding of 0.005 or better).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", type=Path, nargs="+")
    p.add_argument("--tag", default="defaults")
    p.add_argument("--pick", action="append", default=[], metavar="PROJECT=TAG")
    p.add_argument("--outputs", type=Path, default=REPO / "outputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=0.005, help="a metric this much worse still counts as the same")
    args = p.parse_args(argv)
    picks = dict(item.split("=", 1) for item in args.pick)
    rows = [json.loads(line) for path in args.rows for line in path.read_text().splitlines() if line.strip()]
    chosen: dict[str, dict] = {}
    for r in rows:
        if "error" in r or r.get("seed") != args.seed or r.get("tag") != picks.get(r["project"], args.tag):
            continue
        if r.get("repeat", 0) > 0:  # a warm repeat in the same process: a pipeline stage pays the first run
            continue
        chosen[r["project"]] = r  # the last row of a configuration wins
    print("| project | GPU config | GPU train s | CPU train s | speed-up | GPU metric | CPU metric | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    gpu_total = cpu_total = 0.0
    for name, r in chosen.items():
        metrics_file = args.outputs / name / "metrics.json"
        cpu = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        cpu_s, cpu_v = cpu.get("train.seconds"), cpu.get(r["metric"])
        speed = cpu_s / r["train_s"] if cpu_s and r["train_s"] else None
        same = None
        if cpu_v is not None:
            delta = (r["value"] - cpu_v) if r["higher_is_better"] else (cpu_v - r["value"])
            same = delta >= -args.tolerance
        goal = "yes" if (speed or 0) >= 10 and same else "no"
        gpu_total += r["train_s"]
        cpu_total += cpu_s or 0
        config = f"{r['tag']} (batch {r['batch_size']}, lr {r['lr']:.3g})" if r.get("lr") else r["tag"]
        print(
            f"| `{name}` | {config} | {r['train_s']:.1f} | {cpu_s if cpu_s is not None else '-'} | "
            f"{f'{speed:.1f}x' if speed else '-'} | {r['metric']} {r['value']:.3f} | "
            f"{f'{cpu_v:.3f}' if cpu_v is not None else '-'} | {goal} |"
        )
    print(f"| all | | {gpu_total:.1f} | {cpu_total:.1f} | {cpu_total / max(gpu_total, 1e-9):.1f}x | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
