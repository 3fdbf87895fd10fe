"""The dependency rules of ARCHITECTURE.md, checked on the import graph read from the source.

defs → core only (the core never imports dagster or defs); backtest never imports discovery;
strategies never import backtest; selector and bots never import each other; the core never
imports the CLI. Internal imports inside functions must say why (a comment on the line or the
line above), except the frozen allow-list ``in_function_imports.txt``. Each rule is shown to
fail when a forbidden import is planted. Nothing is written inside the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trading_pipeline_tests.import_graph import (
    ALLOW_LIST,
    PACKAGE,
    ROOT,
    RULES,
    Import,
    Violation,
    imports,
    read_allow_list,
    stale,
    summary,
    unexplained,
    violations,
)

# Violations another helper's branch removes (the lead empties this after merging; an entry
# that no longer occurs fails test_known_violations_are_still_real, so it cannot linger).
KNOWN_VIOLATIONS: set[str] = set()  # none left: a violation found in the tree fails


def _key(v: Violation) -> str:
    return f"{v.rule}: {v.imp.module} -> {v.imp.target}"


@pytest.fixture(scope="module")
def tree() -> list[Import]:
    return imports(ROOT)


def test_the_tree_keeps_every_dependency_rule(tree: list[Import]) -> None:
    found = {_key(v) for v in violations(tree)}
    assert found - KNOWN_VIOLATIONS == set(), "\n".join(sorted(found - KNOWN_VIOLATIONS))


def test_known_violations_are_still_real(tree: list[Import]) -> None:
    assert {_key(v) for v in violations(tree)} >= KNOWN_VIOLATIONS


def test_in_function_imports_say_why_or_are_allow_listed(tree: list[Import]) -> None:
    allowed = read_allow_list()
    counts = summary(tree, allowed)
    print("layering:", " ".join(f"{k}={v}" for k, v in counts.items()))
    new = unexplained(tree, allowed)
    assert not new, "say why on the line or the line above (e.g. `# lazy: mlflow costs 2 s`):\n" + (
        "\n".join(f"{i.module}:{i.line} {i.key}" for i in new)
    )
    assert not stale(tree, allowed), f"remove from {ALLOW_LIST.name}: {stale(tree, allowed)}"
    assert counts["in_function"] >= counts["in_function_allow_listed"] > 0


def _plant(root: Path, module: str, source: str) -> None:
    """Write ``module`` (dotted) under ``root`` with its packages' ``__init__.py``."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        init = root.joinpath(*parts[:i], "__init__.py")
        init.parent.mkdir(parents=True, exist_ok=True)
        init.touch()
    root.joinpath(*parts).with_suffix(".py").write_text(source)


# one planted import per rule: (rule, importing module, import statement, module it names)
PLANTED = [
    ("core never imports dagster", "market.x", "import dagster\n", None),
    ("core never imports dagster", "regimes.x", "from dagster import asset\n", None),
    ("core never imports defs", "bots.x", "from trading_pipeline.defs import resources\n", "defs.resources"),
    ("core never imports defs", "tracking", "import trading_pipeline.definitions\n", "definitions"),
    ("core never imports the CLI", "history.x", "from trading_pipeline.cli import main\n", "cli"),
    ("core never imports the CLI", "market.x", "from trading_pipeline.backtest import cli\n", "backtest.cli"),
    ("backtest never imports discovery", "backtest.x", "from trading_pipeline.discovery.results import deflate\n", "discovery.results"),
    ("backtest never imports discovery", "backtest.x", "from ..discovery import splits\n", "discovery.splits"),
    ("strategies never import backtest", "strategies.x", "from trading_pipeline.backtest.kernels import f\n", "backtest.kernels"),
    ("selector never imports bots", "selector.x", "def f():\n    from trading_pipeline.bots.spec import FLEET  # lazy\n", "bots.spec"),
    ("bots never import selector", "bots.x", "if True:\n    import trading_pipeline.selector.decide\n", "selector.decide"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "module", "source", "target"), PLANTED)
def test_each_rule_fails_on_a_planted_import(
    tmp_path: Path, rule: str, module: str, source: str, target: str | None
) -> None:
    if target is not None:
        _plant(tmp_path, f"{PACKAGE}.{target}", "")
    _plant(tmp_path, f"{PACKAGE}.{module}", source)
    found = violations(imports(tmp_path))
    assert [v.rule for v in found] == [rule]
    assert found[0].imp.module == f"{PACKAGE}.{module}"


def test_allowed_arrows_pass(tmp_path: Path) -> None:
    """defs and the CLI may import the core (and dagster / anything); core → core is fine."""
    _plant(tmp_path, f"{PACKAGE}.selector.decide", "")
    _plant(tmp_path, f"{PACKAGE}.bots.spec", "")
    _plant(
        tmp_path, f"{PACKAGE}.defs.x", "import dagster\nfrom trading_pipeline.bots import spec\n"
    )
    _plant(tmp_path, f"{PACKAGE}.cli.x", "from trading_pipeline.selector import decide\n")
    _plant(tmp_path, f"{PACKAGE}.discovery.x", "from trading_pipeline.backtest import engine\n")
    assert violations(imports(tmp_path)) == []
    assert {r.name for r in RULES} == {p[0] for p in PLANTED}  # every rule planted above


def test_a_planted_import_in_a_copy_of_the_package_is_caught(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    before = {_key(v) for v in violations(imports(tmp_path))}
    engine = tmp_path / PACKAGE / "backtest" / "engine.py"
    engine.write_text(engine.read_text() + "\nfrom trading_pipeline.discovery import tuning\n")
    after = {_key(v) for v in violations(imports(tmp_path))}
    assert after - before == {
        "backtest never imports discovery: "
        "trading_pipeline.backtest.engine -> trading_pipeline.discovery.tuning"
    }


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def f():\n    from trading_pipeline.market import schema\n", False),
        ("def f():\n    from trading_pipeline.market import schema  # lazy: polars\n", True),
        ("def f():\n    # lazy: polars costs 1 s\n    from trading_pipeline.market import schema\n", True),
        (
            "def f():\n    # lazy: both\n    import os\n    from trading_pipeline.market import schema\n",
            True,
        ),
        ("def f():\n    x = 1  # unrelated\n\n    from trading_pipeline.market import schema\n", False),
    ],
)  # fmt: skip
def test_an_in_function_import_needs_a_reason(tmp_path: Path, source: str, reason: bool) -> None:
    _plant(tmp_path, f"{PACKAGE}.market.schema", "")
    _plant(tmp_path, f"{PACKAGE}.regimes.x", source)
    found = imports(tmp_path)
    new = unexplained(found, allowed=set())
    assert [i.key for i in new] == (
        [] if reason else ["trading_pipeline.regimes.x:f -> trading_pipeline.market.schema"]
    )
    assert unexplained(found, allowed={f"{PACKAGE}.regimes.x:f -> {PACKAGE}.market.schema"}) == []


@pytest.mark.slow
def test_ruff_bans_dagster_outside_defs(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text("import dagster\n")
    base = [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID251"]
    config = ["--config", str(ROOT / "pyproject.toml")]
    out = subprocess.run([*base, *config, str(offender)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "TID251" in out.stdout and "dagster" in out.stdout
    # the same text linted as a module of defs/ is allowed (read from stdin: nothing written)
    inside = subprocess.run(
        [*base, "--stdin-filename", "trading_pipeline/defs/x.py", "-"],
        input="import dagster\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert inside.returncode == 0, inside.stdout


@pytest.mark.slow
def test_core_packages_import_without_dagster() -> None:
    code = (
        "import sys, importlib, pkgutil, trading_pipeline\n"
        "for m in pkgutil.walk_packages(trading_pipeline.__path__, 'trading_pipeline.'):\n"
        "    if m.name.startswith(('trading_pipeline.defs', 'trading_pipeline.definitions')): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k == 'dagster' or k.startswith('dagster.'))\n"
        "print(len(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "0"
