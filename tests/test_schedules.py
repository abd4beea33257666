"""Cron schedules in params.yaml become Prefect deployments of retrain-and-promote; bad cron strings never load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.cron import validate_cron
from components.projects import settings_schemas
from components.settings import SettingsError, load_project_settings

GOOD = [
    "0 3 * * 1",
    "*/15 * * * *",
    "0 0 1 jan,jul *",
    "30 6 * * mon-fri",
    "0 22 * * 0,7",
    "5 4 1-10/3 * *",
    "@daily",
    "@hourly",
    "@weekly",
]
BAD = {
    "61 * * * *": "minute 61 is outside 0-59",
    "0 24 * * *": "hour 24 is outside 0-23",
    "0 3 * *": "has 4 field(s); expected 5",
    "0 3 * * funday": "day of week 'funday' is not a number or one of",
    "*/0 * * * *": "step '0' must be a positive whole number",
    "0 3 10-1 * *": "range '10-1' runs backwards",
    "H 3 * * *": "minute 'H' is not a number",  # Prefect's hashed extension is not cron
    "every day": "has 2 field(s)",
    "0 3 31 2 *": "never fires: no month it names has day 31",  # today: `dlfolio schedule --list` crashes
    "0 3 30 feb mon": "never fires",  # Prefect's croniter finds no date even on Mondays
    "0 3 31 4,6,9,11 *": "never fires",
    "0 3 31 2-4/2 *": "never fires",
}
RARE = ["0 3 29 2 *", "0 3 */30 2 *", "0 3 31 */2 *", "0 3 5/10 2 *", "0 3 31 2,3 1"]  # they do fire
REPO = Path(__file__).resolve().parents[1]


def write_params(root, data_dir, schedules: dict[str, object]) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = {**params["projects"]["face-mask"], "data_dir": str(data_dir)}
    section.pop("schedule", None)  # the repository's own schedule is not the one under test
    if "face-mask" in schedules:
        section["schedule"] = schedules["face-mask"]
    (root / "params.yaml").write_text(
        yaml.safe_dump({"defaults": params.get("defaults", {}), "projects": {"face-mask": section}})
    )


@pytest.mark.unit
@pytest.mark.parametrize("cron", GOOD)
def test_valid_cron_strings_load_and_prefect_accepts_them(cron):
    from prefect.client.schemas.schedules import CronSchedule

    assert validate_cron(cron) == cron
    assert CronSchedule(cron=cron).cron == cron  # what we accept, the scheduler accepts too


@pytest.mark.unit
@pytest.mark.parametrize("cron", [*GOOD, *RARE])
def test_every_accepted_cron_string_has_a_next_run_and_every_never_firing_one_has_none(cron):
    from flows.commands.schedule import next_runs

    assert validate_cron(cron) == cron
    assert len(next_runs(cron)) == 2  # Prefect's croniter finds the next two
    never = [c for c, why in BAD.items() if "never fires" in why]
    for c in never:  # and the ones refused as never firing really have no next run there
        with pytest.raises(Exception, match="failed to find next date"):
            next_runs(c)


@pytest.mark.unit
@pytest.mark.parametrize("cron,why", BAD.items())
def test_a_bad_cron_string_is_rejected_with_its_yaml_path(tmp_path, cron, why):
    write_params(tmp_path, tmp_path / "data", {"face-mask": cron})

    with pytest.raises(SettingsError) as error:
        load_project_settings(tmp_path / "params.yaml", "face-mask", settings_schemas())

    message = str(error.value)
    assert f"{tmp_path / 'params.yaml'}: projects.face-mask.schedule:" in message
    assert why in message


@pytest.mark.unit
def test_a_project_without_schedule_gets_no_deployment(tmp_path):
    from flows.schedules import build_deployments

    write_params(tmp_path, tmp_path / "data", {})
    assert build_deployments("params.yaml", tmp_path) == []


@pytest.mark.integration
def test_deployments_are_built_from_params_and_registered_with_their_cron(tmp_path, prefect_server):
    from prefect.client.orchestration import get_client

    from flows.schedules import build_deployments

    write_params(tmp_path, tmp_path / "data", {"face-mask": "0 3 * * 1"})

    [deployment] = build_deployments("params.yaml", tmp_path)

    assert deployment.flow_name == "retrain-and-promote"
    assert deployment.name == "face-mask-retrain-and-promote"
    assert deployment.parameters == {"project": "face-mask", "params": "params.yaml", "root": str(tmp_path.resolve())}
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]
    deployment.apply()  # what `dlfolio schedule` (prefect.serve) does first; the server now owns the schedule
    with get_client(sync_client=True) as client:
        stored = client.read_deployment_by_name("retrain-and-promote/face-mask-retrain-and-promote")
    assert [s.schedule.cron for s in stored.schedules] == ["0 3 * * 1"]
    assert stored.schedules[0].active and stored.parameters["project"] == "face-mask"


@pytest.mark.unit
def test_schedule_list_shows_next_runs_and_a_bad_cron_exits_with_the_path(tmp_path, run_cli):
    write_params(tmp_path, tmp_path / "data", {"face-mask": "30 6 * * mon-fri"})
    code, out, _ = run_cli("schedule", "--list", "--root", str(tmp_path))
    assert code == 0
    assert "face-mask-retrain-and-promote: cron '30 6 * * mon-fri'" in out and "06:30 UTC" in out

    write_params(tmp_path, tmp_path / "data", {"face-mask": "30 25 * * *"})
    code, _, err = run_cli("schedule", "--list", "--root", str(tmp_path))
    assert code == 2 and "projects.face-mask.schedule" in err and "hour 25 is outside 0-23" in err
