"""Run folders: every experiment writes its results to a fresh folder, atomically.

A run folder holds ``.sfe-run`` (the marker: the files and folders this run wrote),
``config.json`` (the run's record: every option with its default applied, what they resolved
to, package and project versions, git commit), result files (CSV/JSON/PNG) and ``parts/`` with
one JSON per finished cell so an interrupted run continues with ``--resume``. Every file is
written to a temporary name and renamed into place (``os.replace``), so a crash never leaves a
half-written result, with the permissions the umask gives. An existing folder is only
replaced with ``force=True``, only if its marker says it is a run folder, and then only the
files listed in the marker are deleted; a folder with anything else in it is refused.
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
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PACKAGES = ("strategic-feedback-env", "numpy", "scipy", "torch", "gymnasium", "pettingzoo", "stable-baselines3",
            "matplotlib")
PROJECT = "strategic-feedback-env"
MARKER = ".sfe-run"
# A run's scratch files: ``.<name>.<random>.tmp`` (atomic writes of ``name``) and
# ``.<name>.corrupt`` (a corrupt part moved aside); they belong to the run if ``name`` does.
_SCRATCH = re.compile(r"^\.(.+?)\.(?:[A-Za-z0-9_]+\.tmp|corrupt)$")


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (exists, is not ours, or differs from the run being resumed)."""


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(*args) -> str | None:
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def project_version() -> dict:
    """The project's version, and its git commit (and whether tracked files differ from it) when
    it runs from a git checkout; ``None`` where there is none."""
    try:
        version = metadata.version(PROJECT)
    except metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "HEAD")
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"name": PROJECT, "version": version, "git_commit": commit, "git_dirty": dirty}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets what open() would give
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
    if isinstance(obj, Path):
        return str(obj)
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


def _read_marker(path: Path) -> dict | None:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list) or \
            not isinstance(marker.get("dirs"), list):
        return None
    return marker


class RunFolder:
    """A folder for one experiment run.

    ``force`` replaces an existing run folder (one with our marker and nothing but the files it
    lists); ``resume`` reopens it and keeps its finished parts (its stored config must equal
    ``config``). ``extra`` entries are added to the record in ``config.json``.
    """

    def __init__(self, path, config: dict, *, command: str, force: bool = False, resume: bool = False,
                 extra: dict | None = None):
        self.path = Path(path)
        self.config = json.loads(to_json(config))
        self._files, self._dirs = {MARKER}, set()
        config_file = self.path / "config.json"
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} is a file, not a run folder; choose another --out")
        existing = self.path.exists() and any(self.path.iterdir())
        if resume:
            if not existing:
                raise RunFolderError(f"cannot resume {self.path}: there is no run in it (it does not exist or is empty)")
            marker = _read_marker(self.path)
            if marker is None or not config_file.exists():
                raise RunFolderError(f"cannot resume {self.path}: it is not a run folder of sfe (no {MARKER} "
                                     "marker or config.json)")
            stored = json.loads(config_file.read_text())
            if stored.get("command") != command or stored.get("config") != self.config:
                raise RunFolderError(f"cannot resume {self.path}: its config differs from this run's")
            self._files.update(marker["files"])
            self._dirs.update(marker["dirs"])
            return
        if existing:
            if not force:
                raise RunFolderError(f"{self.path} already exists; pass --force to replace it or --resume to continue it")
            self._clear()
        self.path.mkdir(parents=True, exist_ok=True)
        self._files.add("config.json")
        self._write_marker()
        record = {
            "command": command,
            "config": self.config,
            **(extra or {}),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "versions": package_versions(),
            "project": project_version(),
        }
        atomic_write_bytes(config_file, to_json(record).encode())

    # -- what this run wrote ---------------------------------------------------------
    def _write_marker(self) -> None:
        marker = {"sfe_run": 1, "files": sorted(self._files), "dirs": sorted(self._dirs)}
        atomic_write_bytes(self.path / MARKER, to_json(marker).encode())

    def _owned(self, rel: Path) -> bool:
        scratch = _SCRATCH.match(rel.name)
        parts = rel.parts
        return (rel.as_posix() in self._files
                or (scratch is not None and (rel.parent / scratch.group(1)).as_posix() in self._files)
                or any("/".join(parts[:k]) in self._dirs for k in range(1, len(parts))))

    def _clear(self) -> None:
        """Delete a previous run's files (``force``); refuse if the folder is not a run folder
        or holds anything the run did not write. Nothing is deleted when it refuses."""
        marker = _read_marker(self.path)
        if marker is None:
            raise RunFolderError(f"refusing to replace {self.path}: it is not a run folder of sfe (no {MARKER} "
                                 "marker); choose another --out")
        self._files.update(marker["files"])
        self._dirs.update(marker["dirs"])
        files, dirs = [], []
        for top, subdirs, names in os.walk(self.path):  # symlinks are entries, never followed
            files += [Path(top, n) for n in names] + [Path(top, d) for d in subdirs if Path(top, d).is_symlink()]
            dirs += [Path(top, d) for d in subdirs if not Path(top, d).is_symlink()]
        foreign = sorted(p.relative_to(self.path).as_posix() for p in files
                         if not self._owned(p.relative_to(self.path)))
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise RunFolderError(f"refusing to replace {self.path}: it holds files sfe did not write ({shown}); "
                                 "move them away or choose another --out")
        for p in files:
            p.unlink()
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            d.rmdir()
        self._files, self._dirs = {MARKER}, set()

    def _target(self, name: str) -> Path:
        """``path / name``, listed in the marker before anything is written to it."""
        path = self.path / name
        rel = Path(name).as_posix()
        if not self._owned(Path(rel)):
            self._files.add(rel)
            self._write_marker()
        return path

    def claim_dir(self, name: str) -> Path:
        """Folder ``name`` inside the run, for files written by others (models, TensorBoard logs):
        everything in it belongs to the run."""
        if name not in self._dirs:
            self._dirs.add(name)
            self._write_marker()
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

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
        atomic_write_bytes(self._target(f"parts/{self._part_name(key)}"), to_json(data, sort_keys=False).encode())

    # -- results -----------------------------------------------------------------------
    def write_json(self, name: str, obj) -> Path:
        path = self._target(name)
        atomic_write_bytes(path, to_json(obj).encode())
        return path

    def write_csv(self, name: str, rows: list[dict]) -> Path:
        buf = io.StringIO()
        fields = list(dict.fromkeys(k for row in rows for k in row))  # rows may add columns (coalition rows)
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        path = self._target(name)
        atomic_write_bytes(path, buf.getvalue().encode())
        return path

    def save_figure(self, name: str, fig) -> Path:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        path = self._target(name)
        atomic_write_bytes(path, buf.getvalue())
        return path
