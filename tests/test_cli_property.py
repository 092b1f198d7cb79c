"""Property test of ``sfe`` (issue "Runs a researcher can trust"): for random argument vectors and
random config files of every subcommand, the outcome is a run that passed every check (it got
as far as making its run folder), or exit status 2 with one ``sfe: error:`` line and nothing
left behind; never a traceback.

In process (``cli.main``) and without running the experiments: the run stops where the run
folder would be made, since everything before that point is what decides valid or invalid.
Memory is capped at 50 MB so large sizes exercise the memory estimate, not the machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strategic_feedback_env.experiments import cli, commands, memory

PARSER = cli.build_parser()
COMMANDS = [c for c in PARSER.commands if c != "rerun"]
VALUES = ["0", "1", "2", "3", "-1", "7", "1e3", "100.7", "inf", "nan", "-inf", "0.5", "1e-300", "1e308", "1000000000000",
          "abc", "", ",", "labeler_0", "labeler_9", "labeler_0,labeler_0", "sw_max", "sw_max,sw_max", "average,median",
          "exaggerate", "truthful,shade", "gradient,shared", "1000,3000", "10,10", "0.01,0.1", "sun-table1", "kl",
          "ppo", "sac", "shared", "independent", "best-response", "reward_report_v0", "online_feedback_v0", "local",
          "rllib", "probability"]
FILE_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**13) | st.floats(allow_nan=True)
                           | st.sampled_from(VALUES), lambda inner: st.lists(inner, max_size=3), max_leaves=4)


class Validated(Exception):
    """Every check passed: the command asked for its run folder."""


def _options(command):
    sub = PARSER.commands[command]
    return [a for a in sub._actions if a.dest not in ("help", "config", "out", "resume", "force")]


def _tokens(action, data):
    if not action.option_strings:  # a positional, such as reproduce's table
        return [data.draw(st.sampled_from([*(action.choices or []), "sun-table9", *VALUES[:8]]))]
    flag = action.option_strings[-1]
    if action.nargs == 0:
        return [flag]
    value = data.draw(st.sampled_from(VALUES) | st.integers(-2, 10**6).map(str))
    return [f"{flag}={value}"]


def _keys(command):
    return [k for a in _options(command) for k in (a.dest, *(f.lstrip("-").replace("-", "_") for f in a.option_strings))]


def _outcome(argv):
    """``(exit code, or None when every check passed; stderr)``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except Validated:
            code = None
    return code, err.getvalue()


def _check(argv, folder, before):
    with _patched():
        code, err = _outcome(argv)
    left = sorted(p.name for p in Path(folder).iterdir())
    event("checks passed" if code is None else f"exit {code}")
    if code is None:
        return
    assert code == 2, (argv, code, err)
    assert err.startswith("sfe: error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert left == before, (argv, left)


@contextlib.contextmanager
def _patched():
    saved = commands.open_run, memory.available_bytes

    def refuse(*args, **kwargs):
        raise Validated

    commands.open_run, memory.available_bytes = refuse, lambda: 50 * 10**6
    try:
        yield
    finally:
        commands.open_run, memory.available_bytes = saved


@contextlib.contextmanager
def _scratch():
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield folder
        finally:
            os.chdir(cwd)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data())
def test_random_argument_vectors_run_or_fail_cleanly(data):
    command = data.draw(st.sampled_from(COMMANDS))
    chosen = data.draw(st.lists(st.sampled_from(_options(command)), max_size=5, unique_by=lambda a: a.dest))
    argv = [command] + [t for action in chosen for t in _tokens(action, data)]
    argv += data.draw(st.sampled_from([[], ["--quick"], ["--frobnicate"], ["--out", "run"], ["--resume", "--out", "x"]]))
    with _scratch() as folder:
        _check(argv, folder, [])


@SETTINGS
@given(data=st.data())
def test_random_config_files_run_or_fail_cleanly(data):
    command = data.draw(st.sampled_from(COMMANDS))
    keys = st.sampled_from(_keys(command)) | st.sampled_from(["samplez", "config", "help", "out"])
    content = data.draw(st.dictionaries(keys, FILE_VALUES, max_size=4))
    kind = data.draw(st.sampled_from(["yaml", "json"]))
    with _scratch() as folder:
        path = Path(folder) / f"c.{kind}"
        path.write_text(yaml.safe_dump(content) if kind == "yaml" else json.dumps(content))
        argv = [command, *(["sun-table1"] if command == "reproduce" else []), "--config", str(path)]
        _check(argv, folder, [path.name])
