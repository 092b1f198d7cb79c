"""Config files (TOML or YAML) as an alternative to command-line flags.

A config file is a flat mapping from option names (as in ``--help``, dashes or
underscores) to values; flags given on the command line override it.
"""

from __future__ import annotations

from pathlib import Path


def load_config(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    else:
        raise ValueError(f"config file {path} must end in .toml, .yaml or .yml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
