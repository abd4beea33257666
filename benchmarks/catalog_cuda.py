"""Each project's own training and evaluation with its default params, on whatever device `auto` finds (CUDA on
a GPU machine): what `dlfolio run` does minus Prefect, MLflow, GX and the registry, which the GPU image lacks.

    python benchmarks/catalog_cuda.py --projects nmt-dates transformer --data-root data --out results/

Needs torch, numpy, pandas, pydantic, pyyaml, matplotlib and each project's own data libraries. Prints a
markdown table (project, device, training seconds, epochs, primary metric) and writes the rows as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.projects import get_project, settings_schemas  # noqa: E402
from components.settings import load_project_settings  # noqa: E402


def run_one(name: str, data_root: Path) -> dict:
    import torch

    project = get_project(name)
    settings = load_project_settings(REPO / "params.yaml", name, settings_schemas())
    settings = settings.model_copy(update={"data_dir": data_root / name})
    epochs: list[dict] = []
    started = time.perf_counter()
    data = project.prepare(settings)
    prepared = time.perf_counter()
    with tempfile.TemporaryDirectory() as checkpoints:
        trained = project.train(
            data, settings, on_epoch=lambda row: epochs.append(dict(row)), checkpoint_dir=Path(checkpoints)
        )
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    trained_at = time.perf_counter()
    evaluation = project.evaluate(trained, data, settings)
    metric = project.primary_metric
    return {
        "project": name,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "prepare_s": round(prepared - started, 1),
        "train_s": round(trained_at - prepared, 1),
        "evaluate_s": round(time.perf_counter() - trained_at, 1),
        "epochs": len(epochs),
        "metric": metric,
        "value": float(evaluation.metrics[metric]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", nargs="+", required=True)
    p.add_argument("--data-root", type=Path, default=REPO / "data")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.projects:
        try:
            row = run_one(name, args.data_root)
        except Exception as exc:  # one project's failure is a row of the report, not the end of it
            row = {"project": name, "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out / "catalog_cuda.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
    print("\n| project | device | train s | epochs | metric |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| `{r['project']}` | error: {r['error']} | | | |"
            if "error" in r
            else f"| `{r['project']}` | {r['device']} | {r['train_s']} | {r['epochs']} | {r['metric']} {r['value']:.4f} |"
        )
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
