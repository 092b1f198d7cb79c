"""The built wheel installs one top-level import package, ``strategic_feedback_env``.

The repository keeps the folders ``agents/``, ``mechanisms/`` and ``experiments/`` beside
``strategic_feedback_env/``; installed they must be its subpackages, never top-level names that
clash with other distributions (``openai-agents`` installs ``agents``). The wheel is built offline
from a copy of the sources with the installed setuptools (``--no-build-isolation``).
"""

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "strategic_feedback_env", "agents", "mechanisms", "experiments"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    setuptools = pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (70, 1):
        pytest.skip(f"building the wheel needs setuptools>=70.1 (the [test] extra's), found {setuptools.__version__}")
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)], check=True, timeout=300)
    (path,) = out.glob("strategic_feedback_env-*.whl")
    return path


def test_wheel_has_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {name.split("/")[0] for name in names}
    dist_info = [t for t in top if t.endswith(".dist-info")]
    assert len(dist_info) == 1 and dist_info[0].startswith("strategic_feedback_env-")
    assert top - set(dist_info) == {"strategic_feedback_env"}
    for sub in ("agents", "mechanisms", "experiments", "reward_report", "online_feedback"):
        assert f"strategic_feedback_env/{sub}/__init__.py" in names, sub
    repo_modules = {p.relative_to(ROOT).as_posix() for d in ("agents", "mechanisms", "experiments")
                    for p in (ROOT / d).rglob("*.py")}
    assert {f"strategic_feedback_env/{m}" for m in repo_modules} <= set(names)


def test_wheel_entry_point_is_namespaced(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(entry_points).decode())
    assert dict(parser["console_scripts"]) == {"sfe": "strategic_feedback_env.experiments.cli:main"}
