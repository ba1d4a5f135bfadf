"""policyledger-cli train and optimum: output, JSON fields, exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from policyledger_core.cli import learning as cli_learning
from policyledger_core.cli import ledger as cli_ledger
from policyledger_core.cli.common import CommandFailed, UsageError
from policyledger_core.cli.main import main
from policyledger_core.learn.population import MAX_AGENTS
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.signing import PublisherKeyError
from policyledger_core.sim.config import ConfigError, preset
from policyledger_core.verify.suite import exact_baselines
from policyledger_core.workspace.store import StoreError


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
    assert data["baselines_expected"] == exact_baselines(preset("high-pressure"))
    assert set(data["baselines"]) == {"random", "ignore", "monitor", "rate_limit", "block_ip",
                                      "isolate_service", "myopic"}


@pytest.mark.parametrize("argv", [
    ["train", "--episodes", "0"],
    ["train", "--episodes", "ten"],
    ["train", "--seed", "-1"],
    ["train", "--seed", str(2**63)],
    ["train", "--preset", "nope"],
    ["train", "--algorithm", "sarsa"],
    ["train", "--agents", "0"],
    ["train", "--agents", "65537"],
    ["train", "--agents", "1000000"],
    ["train", "--episodes", str(2**63)],
    ["train", "--episodes", "1" * 5000],
    ["train", "--hyper", "nope"],
    ["list", "--preset", "nope"],
    ["frobnicate"],
    [],
])
def test_bad_usage_exits_2_with_one_line(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(*args: object) -> NoReturn:
        raise AssertionError("training started before every option was checked")

    monkeypatch.setattr(cli_learning, "run_training", no_training)
    code, out, err = run(*argv)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("policyledger-cli: ")
    assert "Traceback" not in err
    assert len(err) < 260  # one line of a wide terminal (an unknown command lists the known ones)


def test_the_largest_population_the_core_accepts_is_not_a_usage_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    class Started(Exception):
        pass

    def stop(config: object, hyper: object, algorithm: object, agents: int, *rest: object) -> NoReturn:
        seen.append(agents)
        raise Started

    monkeypatch.setattr(cli_learning, "run_training", stop)
    with pytest.raises(Started):
        run("train", "--agents", str(MAX_AGENTS), "--seed", str(2**63 - 1), "--episodes", str(2**63 - 1))
    assert seen == [MAX_AGENTS]


@pytest.mark.parametrize("error, code", [
    (CommandFailed("rejected: policy file: not valid JSON"), 1),
    (LedgerError("ledger is read-only until repaired: entry 0: hash does not match"), 1),
    (StoreError("policy 0123456789ab: content does not match its hash"), 1),
    (UsageError("no ledger in /somewhere"), 2),
    (ConfigError("seed: expected a whole number in [0, 2**63)"), 2),
    (PublisherKeyError("publisher key /k.pem: not an Ed25519 private key"), 2),
    (FileNotFoundError(2, "No such file or directory", "/missing.json"), 2),
    (KeyboardInterrupt(), 130),
])
def test_each_error_has_its_documented_exit_code(error: BaseException, code: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """0 done; 1 a check failed or an input was rejected; 2 bad usage or unreadable input; 130 Ctrl-C."""
    def fail(*args: object) -> NoReturn:
        raise error

    monkeypatch.setattr(cli_ledger, "cmd_list", fail)
    assert run("list") == (code, "", f"policyledger-cli: {_message(error)}\n")
    assert run("list", "--json") == (code, json.dumps({"error": _message(error), "exit": code}) + "\n", "")


def _message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return "No such file or directory: /missing.json" if isinstance(error, OSError) else str(error)


def test_console_script_runs_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "policyledger_core.cli.main", "train", "--seed", "x"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_the_first_run_after_install_says_it_compiles(tmp_path: Path) -> None:
    """With an empty kernel cache the CLI says "compiling" before training; once cached, it does not."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "kernel-cache"),
           "POLICYLEDGER_WORKSPACE": str(tmp_path / "ws")}
    argv = [sys.executable, "-m", "policyledger_core.cli.main", "train", "--preset", "short-burst",
            "--episodes", "50", "--json"]
    first = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert first.returncode == 0, first.stderr
    assert "compiling the training kernel" in first.stderr
    assert json.loads(first.stdout)["episodes"] == 50  # stdout stays pure JSON
    second = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    assert json.loads(second.stdout)["policy_hash"] == json.loads(first.stdout)["policy_hash"]


def test_sweep_json_csv_and_progress(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    code, out, err = run("sweep", "--preset", "short-burst", "--set", "learning_rate=0.5,1.0", "--seeds", "2",
                         "--episodes", "300", "--workers", "2", "-o", str(tmp_path / "runs.csv"),
                         "--workspace", ws, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["runs"]) == 4 and len(data["groups"]) == 2
    assert data["backend"] == "local" and data["stopped"] is False
    assert [c["preset"] for c in data["chained"]] == ["short-burst"]
    assert "sweep: 4/4 runs done" in err
    rows = (tmp_path / "runs.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    assert header[:5] == ["preset", "algorithm", "seed", "agents", "episodes"]
    assert "learning_rate" in header and "policy_hash" in header and len(rows) == 5
    listed = json.loads(run("list", "--workspace", ws, "--json")[1])
    assert data["chained"][0]["policy_hash"] in json.dumps(listed)


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "gamma=0.9"], "unknown hyperparameter 'gamma'"),
    (["--seeds", "0"], "--seeds"),
    (["--address", "host:6379"], "--address: only with --backend ray"),
])
def test_sweep_usage_errors_exit_2_in_one_line(argv: list[str], message: str) -> None:
    code, _out, err = run("sweep", "--episodes", "10", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_ctrl_c_stops_a_sweep_keeps_what_finished_and_says_so(tmp_path: Path) -> None:
    import signal

    argv = [sys.executable, "-m", "policyledger_core.cli.main", "sweep", "--seeds", "60", "--episodes",
            "30000", "--workers", "2", "--workspace", str(tmp_path / "ws"), "--json"]
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
    assert data["stopped"] is True and 1 <= len(data["runs"]) < 60
    assert f"stopped; kept the {len(data['runs'])} of 60 runs that finished" in err
    assert len(data["chained"]) == 1  # the best of what finished is chained
    assert data["failed"] == [] and "Traceback" not in err  # the workers ignore the Ctrl-C
