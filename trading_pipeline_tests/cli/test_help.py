"""Every command and sub-command of ``trading-pipeline`` answers ``--help`` cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command

from trading_pipeline.cli import app, main

# the verbs README's "The command line" documents
DOCUMENTED = [
    "fetch", "mirror serve", "import freqtrade", "backtest", "sweep", "lookahead", "regimes",
    "tune", "tune-worker", "ui", "selector train", "select", "mlflow-ui", "bot run",
    "paper replay", "fleet status", "fleet allocate", "fleet risk-check", "fleet halt",
    "fleet resume", "venue fetch",
]  # fmt: skip
TO_FLAGS = ("--to", "--replay-to")


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


TREE = dict(_walk(get_command(app)))


def test_the_tree_holds_every_documented_verb() -> None:
    names = {" ".join(p) for p in TREE}
    assert [v for v in DOCUMENTED if v not in names] == []
    assert len(TREE) >= len(DOCUMENTED) + 1


@pytest.mark.parametrize("path", list(TREE), ids=lambda p: " ".join(p) or "trading-pipeline")
def test_help_works_and_shows_no_type_placeholders(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    assert out.startswith(f"Usage: {' '.join(('trading-pipeline', *path))}")
    assert "<bool>" not in out
    command = TREE[path]
    assert command.help, f"{path} has no help text"
    for param in command.params:
        if getattr(param, "is_flag", False) and param.name != "help":
            assert "<" not in " ".join(param.opts), param.opts
        if set(param.opts) & set(TO_FLAGS):
            assert "inclusive" in (param.help or ""), f"{' '.join(path)} {param.opts}"
            assert "inclusive" in out


def test_every_to_flag_is_checked() -> None:
    with_to = [p for p, c in TREE.items() if any(set(x.opts) & set(TO_FLAGS) for x in c.params)]
    assert {" ".join(p) for p in with_to} >= {
        "fetch", "backtest", "sweep", "lookahead", "regimes", "tune", "tune-worker",
        "bot run", "paper replay", "venue fetch",
    }  # fmt: skip


def test_json_is_a_plain_flag_everywhere() -> None:
    json_opts = [x for c in TREE.values() for x in c.params if "--json" in x.opts]
    assert len(json_opts) >= 12
    assert all(x.is_flag and not x.secondary_opts for x in json_opts)


def test_a_bare_group_prints_its_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: trading-pipeline fleet") and "risk-check" in out


def test_unknown_option_is_one_error_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--bogus"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: No such option: --bogus\n"
