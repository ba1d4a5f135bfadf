"""policyledger-cli train and optimum: output, JSON fields, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from policyledger_core.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_train_json_has_the_promised_fields() -> None:
    code, out, err = run("train", "--preset", "short-burst", "--episodes", "400", "--seed", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    for key in ("policy_hash", "verified_reward", "ci95", "optimum", "fraction_of_optimum",
                "training_reward", "episodes", "env_steps", "train_seconds"):
        assert key in data
    assert len(data["policy_hash"]) == 64
    assert data["episodes"] == 400
    assert data["fraction_of_optimum"] == pytest.approx(data["verified_reward"] / data["optimum"])
    assert data["train_seconds"] > 0
    assert data["env_steps"] >= 400


def test_train_is_reproducible_and_seed_matters() -> None:
    first = json.loads(run("train", "--episodes", "300", "--seed", "5", "--json")[1])
    again = json.loads(run("train", "--episodes", "300", "--seed", "5", "--json")[1])
    other = json.loads(run("train", "--episodes", "300", "--seed", "6", "--json")[1])
    assert first["policy_hash"] == again["policy_hash"]
    assert first["replay_digest"] == again["replay_digest"]
    assert first["policy_hash"] != other["policy_hash"]


def test_population_counts_all_agents_steps() -> None:
    code, out, _ = run("train", "--agents", "4", "--episodes", "50", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["agents"] == 4
    assert data["env_steps"] >= 4 * 50


def test_text_summary_names_verified_and_training_reward() -> None:
    code, out, _ = run("train", "--episodes", "200", "--algorithm", "double-q")
    assert code == 0
    assert "verified reward" in out and "training reward" in out and "optimum" in out


def test_optimum_json() -> None:
    code, out, _ = run("optimum", "--preset", "high-pressure", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["optimum_expected"] > max(data["baselines_expected"].values())
    assert set(data["baselines"]) == {"random", "ignore", "monitor", "rate_limit", "block_ip",
                                      "isolate_service", "myopic"}


@pytest.mark.parametrize("argv", [
    ["train", "--episodes", "0"],
    ["train", "--episodes", "ten"],
    ["train", "--seed", "-1"],
    ["train", "--seed", str(2**63)],
    ["train", "--preset", "nope"],
    ["train", "--algorithm", "sarsa"],
    ["frobnicate"],
    [],
])
def test_bad_usage_exits_2_with_one_line(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_console_script_runs_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "policyledger_core.cli", "train", "--seed", "x"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
