"""Each torch project's own training and evaluation with its params, on whatever device `auto` finds (CUDA on a
GPU machine): what `dlfolio run` does minus Prefect, MLflow, GX and the registry, which the GPU image lacks.

    python benchmarks/catalog_cuda.py --projects all --data-root /tmp/samples --out results/
    python benchmarks/catalog_cuda.py --projects vgg16-transfer --seeds 0 1 2 --set train.amp=false --tag fp32
    python benchmarks/catalog_cuda.py --projects all --no-profile --tag defaults     # the CPU sizes on the GPU
    python benchmarks/catalog_cuda.py --projects mobilenetv2-transfer --repeats 2 --torch-profile prof/

A project whose folder under --data-root is missing gets its sample from its own `make_sample` first (not timed);
samples made elsewhere (`dlfolio data --data-root DIR P`, e.g. face-mask's, which needs OpenCV's
CascadeClassifier) are used as they are. `--set key=value` (dotted, YAML values) overrides every listed project's
section the way a sweep does, validated like params.yaml; `--no-profile` drops the `train.cuda` GPU profile.
Needs torch, numpy, pandas, pydantic, pyyaml, matplotlib and each project's own data libraries. Writes one JSON
line per run to OUT/catalog_cuda.jsonl and prints a table; `benchmarks/catalog_compare.py` sets the rows beside
the CPU's (`outputs/P/metrics.json` of a `make run`). `--repeats N` trains each configuration N times in one
process: the first run pays the one-off costs (cuDNN autotuning of each new shape, kernel loading), the later ones
show what is left; `--torch-profile DIR` profiles the last repeat's training (tables of the top operators by
self CPU and self CUDA time, DIR/<project>.txt), to see where a small project's GPU seconds go.
`--no-cudnn` runs the whole process without cuDNN (torch's own convolution kernels), whatever the train section's
`cudnn` says: a short transfer run's first seconds are mostly cuDNN's per-shape setup on the host
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.projects import get_project, settings_schemas  # noqa: E402
from components.settings import load_project_settings  # noqa: E402

# The catalog's projects that train with torch (the NumPy and closed-form ones have nothing for a GPU to do).
TORCH_PROJECTS = [
    "face-mask",
    "happy-house",
    "mnist-dnn",
    "mnist-mc-dropout",
    "resnet50",
    "mobilenetv2-transfer",
    "vgg16-transfer",
    "face-mask-transfer",
    "emojify",
    "nmt-dates",
    "unet-segmentation",
    "transformer",
    "style-transfer",
    "jazz-lstm",
    "yolo-cars",
    "qa-babi",
    "trigger-word",
    "facial-keypoints",
    "facenet-verification",
    "ner-resumes",
]


def warm_up() -> float:
    """Start CUDA, cuBLAS and cuDNN once before any timing: process start-up, not any project's training."""
    import torch

    started = time.perf_counter()
    if torch.cuda.is_available():
        x = torch.randn(64, 3, 32, 32, device="cuda")
        torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device="cuda")).sum().item()
        (x.flatten(1) @ x.flatten(1).T).sum().item()
        torch.cuda.synchronize()
    return time.perf_counter() - started


def no_tf32() -> None:
    """Full float32 matmuls and convolutions even where the loop asks for TF32 (an investigation switch)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision = lambda precision: None  # fit() asks for "high"; keep "highest"


def no_cudnn_benchmark() -> None:
    """Keep cuDNN's heuristics even though fit() asks for autotuning (an investigation switch)."""
    import torch

    cudnn = type(torch.backends.cudnn)
    cudnn.benchmark = property(lambda self: False, lambda self, value: None)
    torch._C._set_cudnn_benchmark(False)


def no_cudnn() -> None:
    """Torch's own convolution kernels for the whole process, whatever the train section's ``cudnn`` says."""
    import torch

    cudnn = type(torch.backends.cudnn)
    cudnn.enabled = property(lambda self: False, lambda self, value: None)
    torch._C._set_cudnn_enabled(False)


def profiled(trace_dir: Path | None, name: str):
    """A context that profiles what runs inside it and writes the operator tables; a no-op without a folder."""
    import contextlib

    if trace_dir is None:
        return contextlib.nullcontext()
    import torch.profiler as tp

    @contextlib.contextmanager
    def scope():
        activities = [tp.ProfilerActivity.CPU] + ([tp.ProfilerActivity.CUDA] if _cuda() else [])
        with tp.profile(activities=activities) as prof:
            yield
        trace_dir.mkdir(parents=True, exist_ok=True)
        table = prof.key_averages()
        text = [f"# {name}: top operators by self CPU time", table.table(sort_by="self_cpu_time_total", row_limit=30)]
        if _cuda():
            text += [f"# {name}: top by self CUDA time", table.table(sort_by="self_cuda_time_total", row_limit=30)]
        (trace_dir / f"{name}.txt").write_text("\n".join(text))

    return scope()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_one(
    name: str, data_root: Path, overrides: dict, seed: int | None, scale=None, no_profile=False, trace_dir=None
) -> dict:
    import torch

    project = get_project(name)
    if seed is not None:
        overrides = {**overrides, "seed": seed}
    base = getattr(load_project_settings(REPO / "params.yaml", name, settings_schemas()), "train", None)
    if hasattr(base, "for_device"):  # style-transfer's optimisation has no batches, no profile
        if no_profile:
            overrides = {**overrides, "train.cuda": None}
        elif scale is not None:  # a trial profile: the CPU batch times B, the LR times L
            trial = {"batch_size": round(base.batch_size * scale[0]), "lr_scale": scale[1]}
            overrides = {**overrides, "train.cuda": trial}
    settings = load_project_settings(REPO / "params.yaml", name, settings_schemas(), overrides)
    settings = settings.model_copy(update={"data_dir": data_root / name})
    if not settings.data_dir.is_dir() or not any(settings.data_dir.iterdir()):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        project.make_sample(settings.data_dir)
    epochs: list[dict] = []
    started = time.perf_counter()
    data = project.prepare(settings)
    prepared = time.perf_counter()
    with tempfile.TemporaryDirectory() as checkpoints, profiled(trace_dir, name):
        trained = project.train(
            data, settings, on_epoch=lambda row: epochs.append(dict(row)), checkpoint_dir=Path(checkpoints)
        )
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        trained_at = time.perf_counter()
    evaluation = project.evaluate(trained, data, settings)
    metric = project.primary_metric
    train = getattr(settings, "train", None)
    resolved = train.for_device("cuda" if torch.cuda.is_available() else "cpu") if train is not None else None
    return {
        "project": name,
        "seed": settings.seed,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "prepare_s": round(prepared - started, 2),
        "train_s": round(trained_at - prepared, 2),
        "evaluate_s": round(time.perf_counter() - trained_at, 2),
        "epochs": len(epochs),
        "batch_size": getattr(resolved, "batch_size", None),
        "lr": getattr(resolved, "lr", None),
        "metric": metric,
        "higher_is_better": project.higher_is_better,
        "value": float(evaluation.metrics[metric]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", nargs="+", required=True, help="names, or 'all' for every torch project")
    p.add_argument("--data-root", type=Path, default=REPO / "data")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--seeds", type=int, nargs="+", default=[None], help="default: each project's own seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.amp=false")
    p.add_argument("--no-profile", action="store_true", help="train.cuda: null (the CPU's sizes on the GPU)")
    p.add_argument("--no-tf32", action="store_true", help="full float32 where autocast leaves float32")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--tag", default="", help="a label for this configuration's rows")
    p.add_argument("--cuda-scale", type=float, nargs=2, metavar=("B", "L"), help="trial profile: batch x B, LR x L")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="cuDNN's heuristics, no autotuning")
    p.add_argument("--no-cudnn", action="store_true", help="torch's own convolutions: cuDNN off for the process")
    p.add_argument("--repeats", type=int, default=1, help="train each configuration N times in this process")
    p.add_argument("--torch-profile", type=Path, metavar="DIR", help="profile the last repeat's training")
    args = p.parse_args(argv)
    import torch

    projects = TORCH_PROJECTS if args.projects == ["all"] else args.projects
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    if args.no_tf32:
        no_tf32()
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if args.no_cudnn_benchmark:
        no_cudnn_benchmark()
    if args.no_cudnn:  # cuDNN's per-shape setup on the host is most of a short transfer run's first seconds
        no_cudnn()
    args.out.mkdir(parents=True, exist_ok=True)
    context = {
        "tag": args.tag,
        "overrides": dict(overrides),
        "tf32": not args.no_tf32,
        "deterministic": args.deterministic,
        "profile": not args.no_profile,
        "cuda_scale": args.cuda_scale,
        # what the train section says (off unless cudnn_benchmark: true) or forced off; rows before 2026-12-03 15:00
        # UTC wrote true for "not forced off"
        "cudnn_benchmark": "forced off" if args.no_cudnn_benchmark else "as the train section says",
        # forced off, or what the train section says (``cudnn``, on unless false); rows before 2026-12-04 wrote true for
        # "not forced off" (the section had no switch then)
        "cudnn": "forced off" if args.no_cudnn else "as the train section says",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
    }
    print(json.dumps({"cuda_warm_up_s": round(warm_up(), 2), **context}), flush=True)
    rows = []
    for name in projects:
        for seed, repeat in ((s, r) for s in args.seeds for r in range(args.repeats)):
            trace = args.torch_profile if repeat == args.repeats - 1 else None
            try:
                row = run_one(name, args.data_root, overrides, seed, args.cuda_scale, args.no_profile, trace)
                row = {**row, "repeat": repeat, **context}
            except Exception as exc:  # one project's failure is a row of the report, not the end of it
                row = {"project": name, "seed": seed, "error": f"{type(exc).__name__}: {exc}", **context}
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(args.out / "catalog_cuda.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
    print(
        "\n| project | seed | device | batch | train s | epochs | metric |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for r in rows:
        print(
            f"| `{r['project']}` | {r['seed']} | error: {r['error']} | | | | |"
            if "error" in r
            else f"| `{r['project']}` | {r['seed']} | {r['device']} | {r['batch_size']} | {r['train_s']} | "
            f"{r['epochs']} | {r['metric']} {r['value']:.4f} |"
        )
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
