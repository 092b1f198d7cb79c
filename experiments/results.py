"""Run folders: every experiment writes its results to a fresh folder, atomically.

A run folder holds ``config.json`` (the full config, seed, command, date, package versions),
result files (CSV/JSON/PNG) and ``parts/`` with one JSON per finished cell so an interrupted
run continues with ``--resume``. Every file is written to a temporary name and renamed into
place (``os.replace``), so a crash never leaves a half-written result; an existing folder is
never overwritten unless ``force=True``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PACKAGES = ("strategic-feedback-env", "numpy", "scipy", "torch", "gymnasium", "pettingzoo", "stable-baselines3")


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (exists, or differs from the run being resumed)."""


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if callable(getattr(obj, "params", None)) and hasattr(obj, "name"):  # a mechanism object in a config
        return {"mechanism": obj.name, "params": obj.params()}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def to_json(obj, sort_keys: bool = True) -> str:
    return json.dumps(obj, indent=2, default=_json_default, sort_keys=sort_keys)


def default_run_path(command: str, seed: int, root: str | Path = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{command}-{stamp}-seed{seed}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


class RunFolder:
    """A folder for one experiment run.

    ``force`` replaces an existing folder; ``resume`` reopens it and keeps its finished parts
    (its stored config must equal ``config``).
    """

    def __init__(self, path, config: dict, *, command: str, force: bool = False, resume: bool = False):
        self.path = Path(path)
        self.config = json.loads(to_json(config))
        config_file = self.path / "config.json"
        if self.path.exists() and any(self.path.iterdir()):
            if resume:
                if not config_file.exists():
                    raise RunFolderError(f"cannot resume {self.path}: it has no config.json")
                stored = json.loads(config_file.read_text())
                if stored.get("config") != self.config:
                    raise RunFolderError(f"cannot resume {self.path}: its config differs from this run's")
                return
            if not force:
                raise RunFolderError(f"{self.path} already exists; pass --force to overwrite or --resume to continue it")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        record = {
            "command": command,
            "config": self.config,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "versions": package_versions(),
        }
        atomic_write_bytes(config_file, to_json(record).encode())

    # -- parts, for --resume ---------------------------------------------------------
    @staticmethod
    def _part_name(key: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", key) + ".json"

    def _read_part(self, key: str):
        """The part's data; ``RunFolderError`` naming the file if it cannot be read as JSON."""
        path = self.path / "parts" / self._part_name(key)
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"part {path} is unreadable or corrupt ({type(exc).__name__}: {exc}); "
                                 "delete it to recompute that part") from None

    def has_part(self, key: str) -> bool:
        """Whether part ``key`` is finished. A corrupt part file (parts are written atomically, so
        only outside damage makes one) counts as unfinished: it is moved aside to
        ``parts/.<name>.corrupt`` with a warning on stderr, and the part is recomputed."""
        path = self.path / "parts" / self._part_name(key)
        if not path.exists():
            return False
        try:
            self._read_part(key)
        except RunFolderError as exc:
            aside = path.with_name(f".{path.name}.corrupt")
            os.replace(path, aside)
            print(f"warning: {exc}; moved to {aside.name} and recomputing", file=sys.stderr)
            return False
        return True

    def load_part(self, key: str):
        return self._read_part(key)

    def save_part(self, key: str, data) -> None:
        # Key order is kept: a resumed run builds its tables (CSV column order) from loaded parts,
        # which must look exactly like the freshly computed ones.
        atomic_write_bytes(self.path / "parts" / self._part_name(key), to_json(data, sort_keys=False).encode())

    # -- results -----------------------------------------------------------------------
    def write_json(self, name: str, obj) -> Path:
        atomic_write_bytes(self.path / name, to_json(obj).encode())
        return self.path / name

    def write_csv(self, name: str, rows: list[dict]) -> Path:
        buf = io.StringIO()
        fields = list(dict.fromkeys(k for row in rows for k in row))  # rows may add columns (coalition rows)
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path / name, buf.getvalue().encode())
        return self.path / name

    def save_figure(self, name: str, fig) -> Path:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        atomic_write_bytes(self.path / name, buf.getvalue())
        return self.path / name
