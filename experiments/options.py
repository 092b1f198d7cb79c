"""Argparse ``type=`` functions of ``sfe``'s options: the one place where values are checked.

Flags and config files go through the same parser, so a range, a choice or a list rule
declared here holds for ``--help``, the command line and ``--config`` files alike. Each
function turns the text of one value into the Python value or raises
``argparse.ArgumentTypeError`` saying what is allowed (argparse prefixes the option name).
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable, Iterable


def _named(fn, name: str):
    fn.__name__ = name
    return fn


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _as_int(text: str) -> int:
    """``text`` as an integer; integral decimals such as ``1e5`` are accepted, ``100.7`` is not."""
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    try:
        x = float(text)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or not x.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(x)


def int_at_least(minimum: int, why: str = "", maximum: int | None = None) -> Callable[[str], int]:
    """An integer ``>= minimum`` (and ``<= maximum`` if given); ``why`` is added to the message
    (e.g. why one is too few)."""
    reason = f" ({why})" if why else ""
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"

    def parse(text: str) -> int:
        value = _as_int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer {allowed}{reason}, got {text!r}")
        return value

    return _named(parse, f"integer {allowed}")


# numpy's legacy seeding (used by SB3) takes seeds below 2**32; runs add offsets to the seed.
MAX_SEED = 2**31 - 1


def finite_float(text: str) -> float:
    """Any finite number."""
    x = _number(text)
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return x


def float_in(low: float, high: float, low_open: bool = True) -> Callable[[str], float]:
    """A finite number in ``(low, high]`` (``[low, high]`` with ``low_open=False``); ``high`` may be inf."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"

    def parse(text: str) -> float:
        x = finite_float(text)
        if (x <= low if low_open else x < low) or x > high:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}")
        return x

    return _named(parse, f"number in {interval}")


positive_float = float_in(0.0, math.inf)


def listed(item: Callable[[str], object], min_len: int = 1, what: str = "values") -> Callable[[str], list]:
    """A comma-separated list of ``item`` values: no empty entries, no duplicates, at least ``min_len``."""

    def parse(text: str) -> list:
        entries = [e.strip() for e in str(text).split(",")]
        if any(not e for e in entries):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} with no empty entry, got {text!r}")
        values = []
        for entry in entries:
            try:
                values.append(item(entry))
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"expected comma-separated {what}; entry {entry!r}: {exc}") from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"expected distinct {what}, got a repeated entry in {text!r}")
        if len(values) < min_len:
            raise argparse.ArgumentTypeError(f"needs at least {min_len} {what}, got {text!r}")
        return values

    return _named(parse, f"list of {what}")


def one_of(names: Callable[[], Iterable[str]], what: str) -> Callable[[str], str]:
    """A name from ``names()`` (looked up when a value is given, so registries may grow)."""

    def parse(text: str) -> str:
        known = list(names())
        if text not in known:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(known)}")
        return text

    return _named(parse, what)


LABELER_ID = re.compile(r"labeler_(0|[1-9][0-9]*)")


def labeler_id(text: str) -> str:
    """A labeler id ``labeler_<i>`` (a bare number is ambiguous in a list of names, so it is refused)."""
    if not LABELER_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a labeler id like labeler_0, got {text!r}")
    return text


def _audit_mechanism(text: str) -> str:
    """A registered mechanism, or ``<mechanism>@<reward model>`` of the preference game."""
    from .audit import game_of

    try:
        game_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


audit_mechanism = _named(_audit_mechanism, "mechanism")


def audit_adversaries() -> list[str]:
    from strategic_feedback_env.agents import adversary_names

    from .audit import GAMES

    return sorted(set().union(*(adversary_names(game) for game in GAMES)))


def _pairs(text: str):
    """``all``, or a number of pairs ``>= 1`` (the preference game's ``pairs``)."""
    return text if text == "all" else int_at_least(1)(text)


pairs_asked = _named(_pairs, "'all' or an integer >= 1")


def regret_mechanisms() -> tuple[str, ...]:
    from .regret import MECHANISMS

    return MECHANISMS


def regret_strategies() -> tuple[str, ...]:
    from .regret import STRATEGIES

    return STRATEGIES


def horizon_mechanisms() -> tuple[str, ...]:
    from .horizon import MECHANISMS

    return MECHANISMS


def horizon_adversaries() -> tuple[str, ...]:
    from .horizon import ADVERSARIES

    return ADVERSARIES
