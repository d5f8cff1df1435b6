"""The README's two set-up commands, run one after the other in one throwaway folder (issue 12).

Command 1 installs the package into ``.venv`` and runs the main job; command 2 installs the
test extras, editable, into the same ``.venv``. Run in that order they once broke the
``robatch-opt`` command (Numba's cache left in site-packages hid the editable install). This
test copies the working tree to a temporary folder, runs both commands exactly as the README
gives them (command 2 without its final ``pytest`` step: this test is part of that run),
then ``robatch-opt solve --json``.

Marked ``slow`` (it installs every dependency into a new virtual environment: minutes);
``.ci/run`` runs it explicitly after the default suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _setup_commands() -> list[str]:
    """The two commands of the README's set-up section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    commands = [b.strip() for b in blocks]
    assert len(commands) == 2, f"the README's set-up section must hold exactly two commands: {commands}"
    return commands


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            target = dst / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def test_the_readme_commands_in_sequence_leave_a_working_command(tmp_path):
    first, second = _setup_commands()
    assert first.endswith("robatch-opt solve"), first
    steps = second.split(" && ")
    assert "pytest" in steps[-1], second
    second_install = " && ".join(steps[:-1])       # the tests themselves are this run

    work = tmp_path / "checkout"
    _copy_tree(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["ROBATCH_OPT_CACHE_DIR"] = str(tmp_path / "kernel-cache")     # a fresh user's cache

    def bash(cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True,
                              timeout=1800)

    res = bash(first)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "joint routing + batching" in res.stdout
    site = next((work / ".venv" / "lib").glob("python3*/site-packages"))
    left = [p for p in (site / "robatch_opt").rglob("*") if p.suffix in (".nbi", ".nbc")] \
        if (site / "robatch_opt").exists() else []
    assert left == [], f"Numba cache written into site-packages: {left[:3]}"

    res = bash(second_install)
    assert res.returncode == 0, res.stderr[-3000:]
    res = bash(".venv/bin/robatch-opt solve --json --no-baselines")
    assert res.returncode == 0, res.stderr[-3000:]
    d = json.loads(res.stdout)
    assert d["status"] in ("optimal", "feasible") and d["cost_usd"] <= d["budget_usd"] * (1 + 1e-12)
    res = bash(".venv/bin/python -c 'import robatch_opt, sys; "
               "sys.exit(0 if robatch_opt.__file__.startswith(sys.argv[1]) else 1)' " + str(work))
    assert res.returncode == 0, "the editable install is not the package that imports"
