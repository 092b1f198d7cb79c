"""Print the floor pins of a pyproject.toml: each direct dependency and [test] requirement
``name>=X`` as ``name==X`` (markers kept), torch as ``torch==2.13.0`` (pyproject.toml says why)."""

import re
import sys
import tomllib

TORCH = "torch==2.13.0"


def floor_pin(requirement: str) -> str:
    spec, _, marker = requirement.partition(";")
    match = re.match(r"\s*([A-Za-z0-9_.\[\]-]+)\s*(.*)", spec)
    name, constraints = match.group(1), match.group(2)
    if name == "torch":
        return TORCH
    floors = [c.strip()[2:].strip() for c in constraints.split(",") if c.strip().startswith(">=")]
    if len(floors) != 1:
        raise SystemExit(f"{requirement!r}: expected exactly one '>=' floor")
    return f"{name}=={floors[0]}" + (f";{marker}" if marker else "")


def main(path: str) -> None:
    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        print(floor_pin(requirement))


if __name__ == "__main__":
    main(sys.argv[1])
