"""``policyledger-cli sweep --task``: JSON, CSV with the task columns, text, chaining, usage errors,
Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.sweep.plan import SWEPT


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_task_sweep_prints_json_writes_csv_and_chains_the_best_of_each_task(tmp_path: Path) -> None:
    ws, path = str(tmp_path / "ws"), tmp_path / "runs.csv"
    code, out, err = run("sweep", "--task", "Taxi-v4", "--task", "CliffWalking-v1", "--set",
                         "learning_rate=0.5,1.0", "--seeds", "2", "--episodes", "600", "--workers", "2",
                         "-o", str(path), "--workspace", ws, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["runs"]) == 8 and len(data["groups"]) == 4
    assert data["backend"] == "local" and data["stopped"] is False and data["failed"] == []
    assert "sweep: 8/8 runs done" in err
    assert [c["task"] for c in data["chained"]] == ["CliffWalking-v1", "Taxi-v4"]
    assert all(c["new_entry"] and c["verified_reward"] is not None for c in data["chained"])
    assert {g["task"] for g in data["groups"]} == {"Taxi-v4", "CliffWalking-v1"}
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:5] == ["task", "horizon", "algorithm", "seed", "episodes"]
    assert {"exact_value", "optimum_expected", "fraction_of_optimum", "policy_hash", *SWEPT} <= set(header)
    assert "preset" not in header and "verified_reward" not in header
    assert len(rows) == 8
    for row, run_ in zip(rows, data["runs"], strict=True):
        assert row["task"] == run_["task"] and row["policy_hash"] == run_["policy_hash"]
        assert float(row["exact_value"]) == run_["exact_value"]
        assert float(row["learning_rate"]) == run_["hyperparameters"]["learning_rate"]
    listed = json.loads(run("list", "--task", "Taxi-v4", "--workspace", ws, "--json")[1])
    taxi = next(c for c in data["chained"] if c["task"] == "Taxi-v4")
    assert taxi["policy_hash"] in json.dumps(listed)


def test_a_task_sweep_in_text_names_the_fraction_and_the_exact_value(tmp_path: Path) -> None:
    code, out, err = run("sweep", "--task", "CliffWalking-v1", "--seeds", "2", "--episodes", "1000",
                         "--workers", "1", "--workspace", str(tmp_path / "ws"))
    assert code == 0, err
    assert "2 runs on the local backend" in out
    assert "CliffWalking-v1" in out and "100.00% \u00b1 0.00% of the optimum over 2 seeds" in out
    assert "exact value -13.0000 of -13.0000" in out
    assert "chained CliffWalking-v1: policy" in out and "replayed in Gymnasium: -13.000" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--preset", "standard", "--task", "Taxi-v4"], "--preset and --task: a sweep is over presets or "
                                                    "over tasks, not both"),
    (["--task", "Taxi-v4", "--agents", "2"], "--agents: populations are for the cyber-defense task"),
    (["--task", "Taxi-v4", "--agents", "1"], "--agents: populations are for the cyber-defense task"),
    (["--task", "Taxi-v4", "--hyper", "seed-defaults"], "--hyper: a task has only the 'recommended' preset"),
    (["--task", "Pong-v5"], "argument --task: invalid choice: 'Pong-v5'"),
    (["--task", "Taxi-v4", "--set", "gamma=0.9"], "unknown hyperparameter 'gamma'"),
])
def test_task_sweep_usage_errors_exit_2_in_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    code, out, err = run("sweep", "--episodes", "10", "--workspace", str(ws), *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("policyledger-cli: ") and out == ""
    assert not ws.exists()  # refused before the workspace is touched
    code, out, err = run("sweep", "--episodes", "10", "--workspace", str(ws), "--json", *argv)
    assert code == 2 and json.loads(out) == {"error": json.loads(out)["error"], "exit": 2} and err == ""


def test_ctrl_c_stops_a_task_sweep_keeps_what_finished_and_says_so(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "policyledger_core.cli.main", "sweep", "--task", "FrozenLake8x8-v1",
            "--seeds", "30", "--episodes", "200000", "--workers", "2", "--workspace", str(tmp_path / "ws"),
            "--json"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert child.stderr is not None
    line = child.stderr.readline()
    while line and not line.startswith("sweep: "):
        line = child.stderr.readline()
    os.killpg(child.pid, signal.SIGINT)  # as Ctrl-C does: the sweep and its workers
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    data = json.loads(out)
    assert data["stopped"] is True and 1 <= len(data["runs"]) < 30
    assert f"stopped; kept the {len(data['runs'])} of 30 runs that finished" in err
    assert [c["task"] for c in data["chained"]] == ["FrozenLake8x8-v1"]  # the best of what finished
    assert data["failed"] == [] and "Traceback" not in err  # the workers ignore the Ctrl-C
