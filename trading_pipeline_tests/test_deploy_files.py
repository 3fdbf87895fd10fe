"""The Dockerfile and the GitHub workflows, linted offline by hadolint and check-jsonschema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # subprocesses (hadolint, check-jsonschema, dagster)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FETCH_FLAGS = ("--symbol", "--interval", "--from", "--to", "--market", "--fill_daily", "--force")
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    assert path is not None, f"{name} is not installed in {BIN}"
    return path


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_hadolint_passes_on_the_dockerfile() -> None:
    out = _run(_tool("hadolint"), "Dockerfile")
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    out = _run(_tool("hadolint"), str(bad))
    assert out.returncode != 0 and "DL3008" in out.stdout


def test_dockerfile_caches_dependencies_and_runs_every_role_as_non_root() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [ln for ln in lines if ln and not ln.startswith("#")]
    text = "\n".join(instructions)
    deps = text.index("uv sync --frozen --no-install-project")
    assert text.index("COPY pyproject.toml uv.lock") < deps < text.index("COPY trading_pipeline")
    users = [ln.split()[1] for ln in instructions if ln.startswith("USER ")]
    assert users and not users[-1].startswith(("root", "0"))
    assert 'ENTRYPOINT ["python", "-m", "trading_pipeline.container"]' in instructions
    assert 'CMD ["fetch"]' in instructions  # bare `docker run IMAGE …` is still the fetcher
    assert "NUMBA_CACHE_DIR=/tmp/numba-cache" in text and "MPLCONFIGDIR=/tmp/matplotlib" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git"} <= set(ignored)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    out = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_does_fail_on_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    out = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad))
    assert out.returncode == 1


def _load(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def test_ci_runs_the_readme_test_command() -> None:
    steps = _load("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run", "").strip() == "make test" for step in steps)
    assert "make test" in (ROOT / "README.md").read_text()


def test_history_fetch_takes_the_fetchers_flags_and_keeps_the_manifest() -> None:
    wf = _load("history-fetch.yml")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert {"symbol", "interval", "from", "to", "market", "fill_daily", "force"} <= set(inputs)
    assert {"base_url", "listing_url", "concurrency"} <= set(inputs)
    assert wf["on"]["schedule"]
    steps = wf["jobs"]["fetch"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "trading-pipeline fetch" in runs
    for flag in (*FETCH_FLAGS, "--base-url", "--listing-url", "--concurrency"):
        assert flag in runs, flag
    # the store is saved even when the fetch fails part-way
    saves = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache/save@")]
    assert saves and saves[0].get("if") == "always()"
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"].endswith("manifest.json")
    # Inputs reach the shell through the environment, never pasted into the script.
    assert "${{ inputs" not in runs


def test_fetch_command_has_every_flag_the_workflow_passes() -> None:
    from typer.main import get_command

    from trading_pipeline.cli import app

    group = get_command(app)
    fetch = group.commands.get("fetch")  # type: ignore[attr-defined]
    if fetch is None:
        pytest.skip("the fetch verb is not registered yet")
    opts = {o for p in fetch.params for o in p.opts}
    for flag in (*FETCH_FLAGS, "--base-url", "--listing-url", "--concurrency"):
        assert flag in opts, flag


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_and_checkout_keeps_no_token(workflow: Path) -> None:
    wf = _load(workflow.name)
    for job in wf["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses")
            if uses is None:
                continue
            ref = uses.split("@", 1)[1]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{uses} is not pinned to a commit"
            if uses.startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False
    # a human-readable version beside each pin
    for line in workflow.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"# v\d+\.\d+\.\d+$", line), line


def test_compose_file_matches_the_compose_spec_and_publishes_on_loopback_only() -> None:
    out = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
        str(ROOT / "docker-compose.yml"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "mlflow", "code-location", "webserver", "daemon"} <= set(services)
    roles = {name: svc.get("command", [None])[0] for name, svc in services.items()}
    assert roles == {"postgres": None, "redis": "redis-server", "mlflow": "mlflow",
                     "code-location": "code-location", "webserver": "webserver",
                     "daemon": "daemon"}  # fmt: skip
    images = {svc["image"] for n, svc in services.items() if n not in ("postgres", "redis")}
    assert images == {"trading-pipeline:latest"}  # one image, every role
    # the studies survive a restart: Redis writes its append-only file to a named volume
    assert "--appendonly" in services["redis"]["command"]
    assert any(str(v).startswith("redis-data:") for v in services["redis"]["volumes"])
    assert compose["x-tp-env"]["TP_OPTUNA_STORAGE"].startswith("redis://redis:")
    for svc in services.values():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    text = (ROOT / "docker-compose.yml").read_text()
    assert "PASSWORD: ${TP_PG_PASSWORD:?" in text  # the secret comes from the environment
