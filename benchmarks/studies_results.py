"""The "Hyperparameter studies" section of benchmarks/RESULTS.md, from the MLflow runs of `dlfolio study`.

    python benchmarks/studies_results.py [--root .] [--no-write] [--note TEXT]

For every project with a ``studies:`` block in ROOT/params.yaml and every study of it, the latest finished
parent run tagged ``study=NAME`` in ROOT's MLflow store: the winner, its metric, the runner-up and the margin,
the number of configurations (failed ones counted), the data the children read, the fixed settings and any
command-line overrides (the sweep's logged grid differs from the preset's), the device, the date and the wall
time. Nothing is typed in by hand: a study without a finished run is listed as not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results_md import write_section  # noqa: E402

HEADING = "## Hyperparameter studies"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def rows(root: Path) -> list[dict]:
    from mlflow.tracking import MlflowClient

    from components.projects import settings_schemas
    from components.settings import load_all_settings
    from components.tracking import runs as tracking

    tracking.configure(root)
    client = MlflowClient()
    out = []
    for project, settings in load_all_settings(root / "params.yaml", settings_schemas()).items():
        if not settings.studies:
            continue
        experiment = client.get_experiment_by_name(settings.experiment or project)
        for name, study in settings.studies.items():
            runs = (
                client.search_runs(
                    [experiment.experiment_id],
                    f"tags.study = '{name}' and attributes.status = 'FINISHED'",
                    order_by=["attributes.start_time DESC"],
                    max_results=1,
                )
                if experiment
                else []
            )
            if not runs:
                out.append({"project": project, "study": name, "run": None})
                continue
            parent = runs[0]
            p, m, t = parent.data.params, parent.data.metrics, parent.data.tags
            metric = p["sweep.metric"]
            children = client.search_runs(
                [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
            )
            best = next((c for c in children if c.info.run_id == t.get("sweep.best_run_id")), None)
            runner_up = next(
                (c for c in children if c.data.tags.get("mlflow.runName") == t.get("sweep.runner_up")), None
            )
            data_dir = best.data.params.get("data_dir", "?") if best else "?"
            preset = {k: v for k, v in study.grid_values().items()}
            grid = {k.removeprefix("sweep.grid."): v for k, v in p.items() if k.startswith("sweep.grid.")}
            changed = sorted(k for k in grid if k.replace(" ", "+") not in preset)
            fixed = {k.removeprefix("sweep.fixed."): v for k, v in p.items() if k.startswith("sweep.fixed.")}
            seconds = (parent.info.end_time - parent.info.start_time) / 1000
            out.append(
                {
                    "project": project,
                    "study": name,
                    "run": parent.info.run_id,
                    "metric": metric,
                    "goal": p["sweep.goal"],
                    "best": t.get("sweep.best", "?"),
                    "best_value": m.get(f"best_{metric}"),
                    "runner_up": t.get("sweep.runner_up"),
                    "runner_up_value": runner_up.data.metrics.get(f"test_{metric}") if runner_up else None,
                    "margin": m.get(f"margin_{metric}"),
                    "configs": int(p["sweep.configs"]),
                    "failed": sum(c.info.status != "FINISHED" for c in children),
                    "data": data_dir,
                    "fixed": fixed,
                    "changed_grid": {k: grid[k] for k in changed},
                    "device": (
                        f"{best.data.params.get('device', '?')} on host {best.data.tags.get('dlfolio.host', '?')}"
                        if best
                        else "?"
                    ),
                    "date": dt.datetime.fromtimestamp(parent.info.start_time / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
                    "seconds": seconds,
                    "gradcheck": max(
                        (
                            c.data.metrics["test_gradcheck_max_relative_error"]
                            for c in children
                            if "test_gradcheck_max_relative_error" in c.data.metrics
                        ),
                        default=None,
                    ),
                }
            )
    return out


def fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def section(found: list[dict], note: str = "") -> str:
    lines = [
        HEADING,
        "",
        "One run of every preset of params.yaml's `studies:` blocks (`dlfolio study P NAME`; never part of `make run`), "
        "each an MLflow parent run with a child per configuration; this table is written by "
        "`python benchmarks/studies_results.py` from those runs. *margin*: the winner's test metric minus the "
        "runner-up's (absolute). The runs are small on purpose (few epochs, CPU, sample data): they show each "
        "effect's direction on this data, not tuned optima; a margin below about 0.01 on a test split of a few "
        "hundred items is within the noise of one seed." + (f" {note}" if note else ""),
        "",
        "| project | study | configs | winner | metric | runner-up | margin | data | fixed settings (and this run's overrides) | device | date (UTC) | wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in found:
        if r["run"] is None:
            lines.append(f"| {r['project']} | {r['study']} | not run | | | | | | | | | |")
            continue
        fixed = " ".join(f"`{k}={v}`" for k, v in r["fixed"].items())
        if r["changed_grid"]:
            fixed += " **grid this run:** " + " ".join(f"`{k}={v}`" for k, v in r["changed_grid"].items())
        failed = f" ({r['failed']} failed)" if r["failed"] else ""
        runner = f"{r['runner_up']} ({fmt(r['runner_up_value'])})" if r["runner_up"] else "-"
        lines.append(
            f"| {r['project']} | {r['study']} | {r['configs']}{failed} | {r['best']} | {r['metric']} {fmt(r['best_value'])} "
            f"({r['goal']}) | {runner} | {fmt(r['margin'])} | `{r['data']}` | {fixed} | {r['device']} | {r['date']} | "
            f"{r['seconds']:.0f} s |"
        )
    checks = [r["gradcheck"] for r in found if r.get("gradcheck") is not None]
    if checks:
        lines += [
            "",
            f"Gradient checks (numpy-dnn children, `test_gradcheck_max_relative_error`: float64 central differences "
            f"against backprop on the trained net): the largest over all {len(checks)} numpy-dnn studies' children "
            f"is {max(checks):.2g}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", default="", help="a sentence added to the section's preamble")
    args = ap.parse_args(argv)
    text = section(rows(Path(args.root).resolve()), args.note)
    print(text)
    if not args.no_write:
        write_section(RESULTS, HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
