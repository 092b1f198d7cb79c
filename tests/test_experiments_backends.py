"""``--backend ray`` gives the same files as the local backend; RLlib training through ``sfe train``."""

from __future__ import annotations

import pytest

from strategic_feedback_env.experiments import cli

pytest.importorskip("ray", reason="install the [ray] extra: pip install strategic-feedback-env[ray]")


@pytest.fixture(scope="module", autouse=True)
def ray_two_cpus():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.parametrize("argv", [
    ["regret", "--horizons", "100,300", "--games", "2", "--strategies", "truthful", "--mechanisms",
     "average,online_weighted"],
    ["audit", "--quick", "--episodes", "2", "--mechanisms", "affine_maximizer,average", "--adversaries",
     "exaggerate,shade"],
])
def test_ray_backend_writes_the_same_results_as_local(argv, tmp_path, capsys):
    name = "regret.csv" if argv[0] == "regret" else "audit.csv"
    assert cli.main([*argv, "--no-progress", "--out", str(tmp_path / "local")]) == 0
    assert cli.main([*argv, "--no-progress", "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    capsys.readouterr()
    assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text()


def test_train_with_rllib_writes_returns(tmp_path, capsys):
    out = tmp_path / "rllib"
    code = cli.main(["train", "--backend", "rllib", "--mode", "shared", "--quick", "--iterations", "2",
                     "--no-progress", "--out", str(out)])
    assert code == 0
    text = (out / "rllib.csv").read_text().splitlines()
    assert text[0].startswith("iteration") and len(text) == 3
    assert cli.main(["train", "--backend", "rllib", "--out", str(tmp_path / "x")]) == 2
