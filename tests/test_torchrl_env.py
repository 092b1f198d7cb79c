"""The native TorchRL env: specs, a rollout against the batched game it wraps, resets, MAPPO smoke."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchrl", reason="torchrl is not installed (pip install -e .[torchrl])")

from torchrl.envs.utils import check_env_specs  # noqa: E402

from strategic_feedback_env.batched import make_batched  # noqa: E402
from strategic_feedback_env.torchrl import LabelerTorchRLEnv  # noqa: E402

GAMES = [("reward_report_v0", {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 3}),
         ("online_feedback_v0", {"n_labelers": 4, "max_cycles": 3, "mechanism": "hedge"})]


@pytest.mark.parametrize("game,config", GAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_check_env_specs(game, config, dtype):
    env = LabelerTorchRLEnv(game, num_envs=5, seed=0, dtype=dtype, **config)
    assert env.batch_size == torch.Size([5]) and env.group_map == {"labelers": env.game.possible_agents}
    check_env_specs(env)


@pytest.mark.parametrize("game,config", GAMES)
def test_rollout_is_the_batched_game(game, config):
    """Same seed, same actions: the tensordict carries the batched game's rewards, infos, flags
    and observations (the final observation on the terminal step, then the new episode)."""
    B, steps = 4, 7
    env = LabelerTorchRLEnv(game, num_envs=B, seed=3, dtype=torch.float64, **config)
    twin = make_batched(game, B, seed=3, backend="torch", **config)
    actions = torch.rand((steps, *env.full_action_spec["labelers", "action"].shape), generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    td = env.reset()
    obs = twin.reset()
    torch.testing.assert_close(td["labelers", "observation"], obs)
    for t in range(steps):
        td["labelers", "action"] = actions[t]
        td = env.step(td)
        obs, rewards, terminated, _, infos = twin.step(actions[t])
        nxt = td["next"]
        torch.testing.assert_close(nxt["labelers", "reward"][..., 0], rewards)
        torch.testing.assert_close(nxt["labelers", "info", "gain"], infos["gain"])
        torch.testing.assert_close(nxt["info", "social_welfare"], infos["social_welfare"])
        assert nxt["done"].shape == (B, 1) and bool(nxt["done"].all()) == bool(terminated.all())
        assert bool(nxt["labelers", "done"].all()) == bool(terminated.all())
        expected = infos["final_observation"] if bool(terminated.all()) else obs
        torch.testing.assert_close(nxt["labelers", "observation"], expected)
        td = env.reset() if bool(terminated.all()) else nxt
        if bool(terminated.all()):  # the collector's reset returns the episode the game already drew
            torch.testing.assert_close(td["labelers", "observation"], obs)
            assert bool((td["labelers", "info", "gain"] == 0).all())


def test_rollout_auto_resets_and_partial_resets_are_refused():
    env = LabelerTorchRLEnv("reward_report_v0", num_envs=3, seed=0, max_cycles=2)
    td = env.rollout(5, break_when_any_done=False)
    assert td["next", "done"][0, :, 0].tolist() == [False, True, False, True, False]
    assert td["next", "info", "round"][0].tolist() == [1, 2, 1, 2, 1]
    with pytest.raises(ValueError, match="share one clock"):
        env.reset(env.reset().set("_reset", torch.tensor([[True], [False], [True]])))


def test_seed_repeats_and_actions_out_of_bounds_are_refused():
    a = LabelerTorchRLEnv("reward_report_v0", num_envs=2, seed=5).reset()
    b = LabelerTorchRLEnv("reward_report_v0", num_envs=2, seed=5).reset()
    assert torch.equal(a["labelers", "observation"], b["labelers", "observation"])
    env = LabelerTorchRLEnv("reward_report_v0", num_envs=2, seed=5)
    td = env.reset()
    td["labelers", "action"] = torch.full(env.full_action_spec["labelers", "action"].shape, 1.5)
    with pytest.raises(ValueError, match="must lie in"):
        env.step(td)


def test_mappo_example_runs():
    from strategic_feedback_env.experiments.torchrl_mappo import train

    history = train(num_envs=8, iterations=2, epochs=1, minibatch=64, n_labelers=3, n_outcomes=4, max_cycles=2)
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in history)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not exercised here")
def test_cuda_env_specs():
    env = LabelerTorchRLEnv("reward_report_v0", num_envs=8, device="cuda", seed=0)
    check_env_specs(env)
    assert env.rollout(3)["next", "labelers", "reward"].device.type == "cuda"
