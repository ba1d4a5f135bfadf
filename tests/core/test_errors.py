"""One error family: every error the core raises for a person is a PolicyLedgerError with its exit code."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import pkgutil

import pytest

import policyledger_core
from policyledger_core.cli import main as cli_main
from policyledger_core.errors import BadInput, PolicyLedgerError, Rejected


def _core_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(policyledger_core.__path__, "policyledger_core."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


def test_every_core_error_belongs_to_the_family() -> None:
    errors = _core_exceptions()
    assert len(errors) >= 10  # the walk found the core's errors
    outside = [e.__qualname__ for e in errors if not issubclass(e, PolicyLedgerError)]
    assert outside == []
    assert all(e.exit_code in (1, 2) for e in errors)


@pytest.mark.parametrize(("error", "code"), [
    (Rejected("entry 3: recorded mean 124.80, replay gives 94.80"), 1),
    (BadInput("--episodes: must be at least 1"), 2),
    (FileNotFoundError(2, "No such file or directory", "missing.json"), 2),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_the_command_line_exits_with_the_kind_of_error(monkeypatch: pytest.MonkeyPatch, error: Exception,
                                                      code: int, as_json: bool) -> None:
    def fail(*_args: object) -> int:
        raise error

    monkeypatch.setattr(cli_main, "cmd_optimum", fail)
    out, err = io.StringIO(), io.StringIO()
    assert cli_main.main(["optimum", *(["--json"] if as_json else [])], out, err) == code
    if as_json:
        assert json.loads(out.getvalue())["exit"] == code
        assert err.getvalue() == ""
    else:
        assert err.getvalue().count("\n") == 1
        assert err.getvalue().startswith("policyledger-cli: ")
