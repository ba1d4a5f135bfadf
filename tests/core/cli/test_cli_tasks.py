"""policyledger-cli on Gymnasium's toy-text tasks: ``optimum --task``, ``train --task``, ``list --task``.

Every command runs through ``cli.main`` with ``--workspace`` pointing at a temporary folder; the
``workspace`` fixture gives each test its own config folder. The optimum is checked against the
independent plain-dict computation of ``tests.core.tasks.reference``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from policyledger_core.cli import learning as cli_learning
from policyledger_core.cli.main import main
from policyledger_core.learn import tabular
from policyledger_core.learn.tabular import CHUNK_STEPS, recommended
from policyledger_core.ledger.entry import Origin
from policyledger_core.tasks.spec import CATALOGUE, task_info
from policyledger_core.workspace.context import Context
from tests.core.tasks import reference

KNOWN_OPTIMA = {"FrozenLake-v1": 0.744190, "FrozenLake8x8-v1": 0.913220, "Taxi-v4": 7.93,
                "CliffWalking-v1": -13.0}
"""The exact optima, rounded as published (issue 12)."""


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str | Path) -> dict[str, Any]:
    code, out, err = run(*argv, "--json")
    assert code == 0, (code, out, err)
    assert out.count("\n") == 1, out
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture
def ws(workspace: Path) -> Path:
    return workspace


# -- optimum --task ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", list(CATALOGUE))
def test_optimum_task_json_is_the_exact_optimum_of_gymnasiums_model(task_id: str) -> None:
    data = run_json("optimum", "--task", task_id)
    assert data["optimum_expected"] == pytest.approx(reference.optimum(task_id), abs=1e-6)
    assert data["optimum_expected"] == pytest.approx(KNOWN_OPTIMA[task_id], abs=1e-6)
    info = task_info(task_id)
    assert data["task"] == task_id and data["horizon"] == info.spec.horizon
    assert data["spec"] == info.spec.to_dict()
    assert data["best_stationary_value"] <= data["optimum_expected"] + 1e-12
    assert set(data["baselines_expected"]) == {"random", "constant"}
    assert max(data["baselines_expected"].values()) < data["best_stationary_value"]


def test_optimum_task_text_shows_the_stationary_gap() -> None:
    code, out, err = run("optimum", "--task", "FrozenLake8x8-v1")
    assert code == 0, err
    assert "optimal expected return 0.913220" in out and "horizon 200 steps" in out
    assert "best stationary table 0.893568 (97.85% of the optimum)" in out
    assert "cannot always reach the optimum" in out
    code, out, err = run("optimum", "--task", "Taxi-v4")
    assert code == 0, err
    assert "(100.00% of the optimum): a table reaches the optimum here" in out


# -- train --task ----------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["Taxi-v4", "CliffWalking-v1"])
def test_train_task_chains_one_verified_entry_listed_under_its_task(ws: Path, task_id: str) -> None:
    data = run_json("train", "--task", task_id, "--workspace", ws)
    hyper = recommended(task_id, "q")
    assert data["task"] == task_id and data["agents"] == 1 and data["stopped"] is False
    assert data["episodes"] == hyper.episodes and data["seed"] == hyper.seed == 0
    assert data["hyperparameters"] == hyper.to_dict()
    assert data["new_entry"] is True and data["entries_created"] == 1
    assert data["fraction_of_optimum"] == 1.0  # these presets reach the optimum on seed 0
    assert data["exact_value"] == pytest.approx(KNOWN_OPTIMA[task_id], abs=1e-9)
    assert data["optimum_expected"] == data["optimum"] == pytest.approx(KNOWN_OPTIMA[task_id], abs=1e-9)
    assert data["best_stationary_fraction"] == 1.0
    ctx = Context.open(ws)
    assert len(ctx.ledger) == 1
    entry = ctx.ledger.entry(0)
    assert entry.policy_hash == data["policy_hash"] and entry.hash == data["entry_hash"]
    assert entry.body["env_id"] == task_id and entry.config == task_info(task_id)
    assert entry.body["config"] == task_info(task_id).config_dict()
    verification = entry.body["verification"]
    assert verification["exact_value"] == data["exact_value"]
    assert verification["mean"] == data["verified_reward"]
    assert verification["replay_digest"] == data["replay_digest"]
    assert entry.origin == Origin("trained")
    training = entry.body["training"]
    assert training == {"algorithm": "q", "hyperparameters": hyper.to_dict(), "episodes": hyper.episodes,
                        "seed": 0, "training_reward": data["training_reward"], "agents": 1}
    assert ctx.store.contains(data["policy_hash"])

    assert run_json("verify", "--replay", "--workspace", ws)["ok"] is True
    ranked = run_json("list", "--task", task_id, "--workspace", ws)["rows"]
    assert [(r["rank"], r["policy_hash"], r["env_id"], r["task"]) for r in ranked] == [
        (1, data["policy_hash"], task_id, True)]
    assert ranked[0]["config"] == task_info(task_id).config_dict()
    assert ranked[0]["preset"] == task_info(task_id).title
    assert [r["policy_hash"] for r in run_json("list", "--workspace", ws)["rows"]] == [data["policy_hash"]]
    other = "Taxi-v4" if task_id != "Taxi-v4" else "CliffWalking-v1"
    assert run_json("list", "--task", other, "--workspace", ws)["rows"] == []
    assert run_json("list", "--preset", "standard", "--workspace", ws)["rows"] == []
    code, out, err = run("list", "--task", task_id, "--workspace", ws)
    assert code == 0, err
    assert data["policy_hash"][:12] in out and task_info(task_id).title in out


def test_train_task_text_names_exact_value_optimum_and_best_stationary(ws: Path) -> None:
    code, out, err = run("train", "--task", "FrozenLake-v1", "--algorithm", "double-q", "--workspace", ws)
    assert code == 0, err
    for words in ("trained 1 agent on FrozenLake-v1", "verified reward", "replayed in Gymnasium",
                  "exact value", "optimum         0.7442 (exact", "best stationary 0.7402 (99.46%",
                  "cannot always reach the optimum", "training reward", "ledger entry    0"):
        assert words in out, (words, out)
    assert Context.open(ws).ledger.entry(0).body["training"]["algorithm"] == "double-q"


def test_frozen_lake_recommended_reaches_the_target_fraction(ws: Path) -> None:
    data = run_json("train", "--task", "FrozenLake-v1", "--workspace", ws)
    assert data["fraction_of_optimum"] >= 0.985
    assert data["exact_value"] <= data["best_stationary_value"] + 1e-12 <= data["optimum"] + 1e-12
    assert data["best_stationary_fraction"] == pytest.approx(0.9946, abs=1e-4)


def test_episodes_and_seed_override_the_tasks_preset(ws: Path) -> None:
    data = run_json("train", "--task", "CliffWalking-v1", "--episodes", "100", "--seed", "7",
                    "--workspace", ws)
    assert data["episodes"] == 100 and data["seed"] == 7
    assert data["hyperparameters"]["episodes"] == 100 and data["hyperparameters"]["seed"] == 7
    again = run_json("train", "--task", "CliffWalking-v1", "--episodes", "100", "--seed", "7",
                     "--workspace", ws)
    assert again["policy_hash"] == data["policy_hash"] and again["new_entry"] is False
    assert again["entry_index"] == data["entry_index"] == 0


def test_ctrl_c_stops_a_task_run_and_what_was_learned_is_verified_and_chained(
        ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGINT during training stops it after the chunk of episodes under way; the agent is the one
    a run of that many episodes learns, verified and chained; Ctrl-C is the shell's again after."""
    real = tabular.TabularRun.advance

    def advance_then_ctrl_c(self: tabular.TabularRun, episodes: int) -> Any:
        done = real(self, episodes)
        signal.raise_signal(signal.SIGINT)  # as Ctrl-C does, to the command's handler
        return done

    monkeypatch.setattr(tabular.TabularRun, "advance", advance_then_ctrl_c)
    data = run_json("train", "--task", "Taxi-v4", "--episodes", "1000000", "--workspace", ws)
    chunk = CHUNK_STEPS // task_info("Taxi-v4").spec.horizon
    assert data["stopped"] is True and data["episodes"] == chunk
    assert data["new_entry"] is True and "exact_value" in data
    assert Context.open(ws).ledger.entry(0).body["training"]["episodes"] == chunk
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(tabular.TabularRun, "advance", real)
    whole = run_json("train", "--task", "Taxi-v4", "--episodes", str(chunk), "--workspace", ws)
    assert whole["stopped"] is False and whole["policy_hash"] == data["policy_hash"]


# -- usage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--preset", "standard", "--task", "Taxi-v4"], "not allowed with argument --preset"),
    (["train", "--task", "Taxi-v4", "--agents", "2"], "populations are for the cyber-defense task"),
    (["train", "--task", "Taxi-v4", "--hyper", "seed-defaults"], "only the 'recommended' preset"),
    (["train", "--task", "Taxi-v5"], "invalid choice: 'Taxi-v5' (choose from 'FrozenLake-v1'"),
    (["optimum", "--task", "Taxi-v4", "--preset", "standard"], "not allowed with argument --task"),
    (["optimum", "--task", "nope"], "'CliffWalking-v1'"),
    (["list", "--preset", "standard", "--task", "Taxi-v4"], "not allowed with argument --preset"),
    (["list", "--task", "nope"], "choose from 'FrozenLake-v1', 'FrozenLake8x8-v1', 'Taxi-v4'"),
])
def test_task_usage_errors_exit_2_in_one_line(argv: list[str], message: str, ws: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(*args: object) -> NoReturn:
        raise AssertionError("training started before every option was checked")

    monkeypatch.setattr(cli_learning, "run_training", no_training)
    monkeypatch.setattr(cli_learning, "run_task_training", no_training)
    code, out, err = run(*argv, "--workspace", ws)
    assert code == 2, (out, err)
    assert out == "" and err.startswith("policyledger-cli: ") and err.count("\n") == 1
    assert message in err and "Traceback" not in err
    assert not ws.exists()  # nothing was written


def test_the_first_task_run_after_install_says_it_compiles(tmp_path: Path) -> None:
    """With an empty kernel cache ``train --task`` says "compiling" before training; once cached, not."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "kernel-cache"),
           "POLICYLEDGER_WORKSPACE": str(tmp_path / "ws"), "POLICYLEDGER_CONFIG_DIR": str(tmp_path / "cfg")}
    argv = [sys.executable, "-m", "policyledger_core.cli.main", "train", "--task", "CliffWalking-v1",
            "--episodes", "20", "--json"]
    first = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert first.returncode == 0, first.stderr
    assert "compiling the training kernel" in first.stderr
    assert json.loads(first.stdout)["episodes"] == 20  # stdout stays pure JSON
    second = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    assert json.loads(second.stdout)["policy_hash"] == json.loads(first.stdout)["policy_hash"]


def test_add_takes_a_task_policy_file(ws: Path, tmp_path: Path) -> None:
    from policyledger_core.canonical import canonical_bytes
    from policyledger_core.policy import TaskPolicy
    from policyledger_core.tasks.toytext import toy_text_task

    table = toy_text_task("CliffWalking-v1").best_stationary().actions
    policy = TaskPolicy(task_info("CliffWalking-v1"), tuple(int(a) for a in table))
    path = tmp_path / "cliff.json"
    path.write_bytes(canonical_bytes(policy.to_dict()))
    data = run_json("add", path, "--workspace", ws)
    assert data["policy_hash"] == policy.hash and data["new_entry"]
    entry = Context.open(ws).ledger.entry(0)
    assert entry.body["env_id"] == "CliffWalking-v1" and entry.verification.exact_value == -13.0
