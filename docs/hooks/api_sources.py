"""MkDocs hook: the package as installed, laid out on disk for mkdocstrings' static analysis.

The repository keeps ``agents/``, ``mechanisms/`` and ``experiments/`` beside
``strategic_feedback_env/``, and ``pyproject.toml`` maps them to ``strategic_feedback_env.agents``
etc. (``[tool.setuptools.package-dir]``). Griffe walks a package's folder, so before the build
this hook copies the Python sources into ``.docs-api/`` in the installed layout, read from that
same mapping; ``mkdocs.yml`` points mkdocstrings' ``paths`` there.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API_SOURCES = ROOT / ".docs-api"


def build_api_sources(root: Path = ROOT, target: Path = API_SOURCES) -> Path:
    """Copy every package's ``.py`` files to ``target/<package path>``; returns ``target``."""
    with open(root / "pyproject.toml", "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    folders = setuptools.get("package-dir", {})
    shutil.rmtree(target, ignore_errors=True)
    for package in setuptools["packages"]:
        # A package's folder: that of its longest mapped prefix plus the rest of its name.
        prefix = max((p for p in folders if package == p or package.startswith(p + ".")), key=len, default=None)
        if prefix is None:
            source = root / package.replace(".", "/")
        else:
            source = root / folders[prefix] / package[len(prefix) + 1:].replace(".", "/")
        destination = target / package.replace(".", "/")
        destination.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, destination / module.name)
    return target


def on_startup(**kwargs):
    """Before any plugin reads its configuration (mkdocstrings resolves ``paths`` then)."""
    build_api_sources()
