"""One schema for flags and config files (issue "Runs a researcher can trust", items 2, 4, 5):
a value that is invalid as a flag is invalid in a file, with the same one-line error and no
run folder; ``quick`` means the same in both; every bad value names its option."""

from __future__ import annotations

import json

import pytest
import yaml

from strategic_feedback_env.experiments import cli, commands, memory

# (command, option key, bad value as a file holds it, text of the flag): each was accepted
# silently or crashed with a traceback before.
BAD = [
    ("train", "mode", "foo", "foo"),
    ("audit", "episodes", None, None),
    ("audit", "episodes", 1, "1"),
    ("audit", "episodes", 2.5, "2.5"),
    ("audit", "episodes", True, "True"),
    ("audit", "seed", -1, "-1"),
    ("audit", "lam", 0, "0"),
    ("audit", "lam", float("nan"), "nan"),
    ("audit", "bias", float("nan"), "nan"),
    ("audit", "bias", float("inf"), "inf"),
    ("audit", "focal", [0], "0"),
    ("audit", "focal", "labeler_0,labeler_0", "labeler_0,labeler_0"),
    ("audit", "mechanisms", "", ""),
    ("audit", "mechanisms", ["sw_max", "sw_max"], "sw_max,sw_max"),
    ("audit", "mechanisms", ["nope"], "nope"),
    ("audit", "adversaries", ["exaggerate", ""], "exaggerate,"),
    ("audit", "n_labelers", 1, "1"),
    ("audit", "n_outcomes", 1, "1"),
    ("regret", "horizons", [float("inf"), 100], "inf,100"),
    ("regret", "horizons", [100.7, 1000], "100.7,1000"),
    ("regret", "horizons", [1000], "1000"),
    ("regret", "n_labelers", 1, "1"),
    ("regret", "games", 1, "1"),
    ("regret", "strategies", ["truthful", "truthful"], "truthful,truthful"),
    ("reproduce", "samples", 0, "0"),
    ("reproduce", "noise_samples", 0, "0"),
    ("reproduce", "noise_levels", [float("nan")], "nan"),
    ("reproduce", "noise_levels", [0.0, 0.1], "0,0.1"),
    ("reproduce", "regularizer", "l2", "l2"),
    ("train", "timesteps", 0, "0"),
    ("train", "mechanism", "nope", "nope"),
]


def _main(argv, capsys):
    code = cli.main(argv + ["--no-progress"])
    err = capsys.readouterr().err
    return code, err


def _one_line(err):
    return err.startswith("sfe: error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _positional(command):
    return ["sun-table1"] if command == "reproduce" else []


@pytest.mark.parametrize("command, key, value, flag", BAD)
def test_a_value_invalid_as_a_flag_is_invalid_in_a_file(command, key, value, flag, tmp_path, capsys):
    option = "--" + key.replace("_", "-")
    out = tmp_path / "run"
    if flag is not None:
        code, err = _main([command, *_positional(command), f"{option}={flag}", "--out", str(out)], capsys)
        assert code == 2 and _one_line(err) and option in err, err
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({key: value}))
    code, err = _main([command, *_positional(command), "--config", str(cfg), "--out", str(out)], capsys)
    assert code == 2 and _one_line(err) and str(cfg) in err and key in err.replace("-", "_"), err
    assert not out.exists()


@pytest.mark.parametrize("content, needle", [
    ({"samplez": 10}, "samplez"),
    ({"samples": {"a": 1}}, "samples"),
    ({"quick": "yes please"}, "true or false"),
    ({"table": "sun-table9"}, "invalid choice"),
])
def test_unknown_keys_and_malformed_values_are_one_line_errors(content, needle, tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(content))
    code, err = _main(["reproduce", "sun-table1", "--config", str(cfg), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and _one_line(err) and needle in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["audit", "train", "reproduce", "regret"])
def test_quick_means_the_same_in_a_file_and_on_the_command_line(command, tmp_path):
    cfg = tmp_path / "q.toml"
    cfg.write_text("quick = true\n")
    by_flag = vars(cli.parse([command, *_positional(command), "--quick"]))
    by_file = vars(cli.parse([command, *_positional(command), "--config", str(cfg)]))
    by_file.pop("config")
    by_flag.pop("config")
    assert by_file == by_flag
    assert {k: by_flag[k] for k in cli.QUICK[command]} == cli.QUICK[command]


def test_flags_override_file_values_which_override_quick(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("quick: true\nepisodes: 5\nn-labelers: 4\nno-progress: true\n")
    args = cli.parse(["audit", "--config", str(cfg), "--episodes", "6"])
    assert args.episodes == 6 and args.n_labelers == 4 and args.max_cycles == cli.QUICK["audit"]["max_cycles"]
    assert args.progress is False


def test_the_table_may_come_from_the_file_and_the_command_line_wins(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("table: sun-table2\n")
    assert cli.parse(["reproduce", "--config", str(cfg)]).table == "sun-table2"
    assert cli.parse(["reproduce", "sun-table1", "--config", str(cfg)]).table == "sun-table1"


def test_help_shows_the_defaults_the_parser_applies(capsys):
    with pytest.raises(SystemExit):
        cli.main(["audit", "--help"])
    out = capsys.readouterr().out
    assert "(default: 20)" in out and "(default: 0.1)" in out


@pytest.mark.parametrize("argv", [
    ["audit", "--lam", "0"],
    ["audit", "--seed", "-1"],
    ["audit", "--focal", "0"],
    ["audit", "--quick", "--focal", "labeler_3"],
    ["audit", "--quick", "--resume", "--force"],
    ["reproduce", "sun-table1", "--samples", "0"],
    ["reproduce", "sun-table1", "--samples", "1000000000000"],
    ["reproduce", "sun-table2"],
    ["regret", "--n-labelers", "1"],
    ["train", "--quick", "--mechanism", "average"],
    ["train", "--quick", "--backend", "rllib"],
    ["bench", "--resume"],
])
def test_nothing_is_written_until_every_option_is_checked(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    code, err = _main(argv + ["--out", str(out)], capsys)
    assert code == 2 and _one_line(err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_extra_is_found_before_the_run_folder(tmp_path, capsys, monkeypatch):
    from strategic_feedback_env.experiments.ray_backend import RayNotInstalledError

    def no_ray():
        raise RayNotInstalledError("backend 'ray' needs the ray package; install the extra: pip install "
                                   "strategic-feedback-env[ray]", name="ray")

    monkeypatch.setattr(cli, "import_ray", no_ray)
    out = tmp_path / "run"
    code, err = _main(["reproduce", "sun-table1", "--samples", "100", "--backend", "ray", "--out", str(out)], capsys)
    assert code == 2 and _one_line(err) and "[ray]" in err and not out.exists()

    import importlib

    real = importlib.import_module

    def no_pygame(name, *a, **k):
        if name.startswith("pettingzoo.classic"):
            raise ModuleNotFoundError("No module named 'pygame'", name="pygame")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_pygame)
    code, err = _main(["bench", "--quick", "--out", str(out)], capsys)
    assert code == 2 and _one_line(err) and ".[bench]" in err and not out.exists()


def test_sizes_that_cannot_fit_are_refused_with_the_memory_they_need(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)
    out = tmp_path / "run"
    code, err = _main(["audit", "--mechanisms", "sw_max", "--n-outcomes", "1000000", "--out", str(out)], capsys)
    assert code == 2 and _one_line(err) and "--n-outcomes 1000000" in err and "GB of memory" in err
    assert "1 GB is available" in err and not out.exists()
    # the estimate grows with the sizes: twice the outcomes, about twice the memory
    small = commands._game_memory(cli.parse(["audit", "--n-outcomes", "50000"]), "reward_report_v0", [], 1)
    large = commands._game_memory(cli.parse(["audit", "--n-outcomes", "100000"]), "reward_report_v0", [], 1)
    assert 1.9 < large / small <= 2.0


def test_running_out_of_memory_anyway_is_one_line(capsys, monkeypatch):
    def exhausted(args):
        raise MemoryError

    monkeypatch.setattr(commands, "reproduce", exhausted)
    code, err = _main(["reproduce", "sun-table1"], capsys)
    assert code == 2 and _one_line(err) and "out of memory" in err
