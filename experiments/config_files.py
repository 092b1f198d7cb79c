"""Config files (TOML, YAML or JSON) as an alternative to command-line flags.

A config file is a flat mapping from option names (as in ``--help``, dashes or underscores) to
values; :func:`strategic_feedback_env.experiments.cli.file_options` parses every value with the
option's own argparse checks, and flags given on the command line override it. A run's own
``config.json`` (its record, :mod:`strategic_feedback_env.experiments.results`) is a config file
too: its ``config`` mapping reruns the run.
"""

from __future__ import annotations

import json
from pathlib import Path


def _parse(path: Path, text: str):
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON: {exc}") from None
    raise ValueError(f"config file {path} must end in .toml, .yaml, .yml or .json")


def load_config(path, command: str | None = None) -> dict:
    """The option mapping of ``path`` (keys with dashes turned into underscores). A run record
    (a mapping with ``command`` and ``config``) gives its ``config``, and must be ``command``'s."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {path} cannot be read: {exc}") from None
    data = _parse(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of option names to values")
    if isinstance(data.get("config"), dict) and "command" in data:
        if command is not None and data["command"] != command:
            raise ValueError(f"config file {path} records a run of sfe {data['command']}, not sfe {command}")
        data = data["config"]
    return {str(k).replace("-", "_"): v for k, v in data.items()}
