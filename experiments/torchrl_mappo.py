"""MAPPO (or IPPO) with TorchRL on the native batched env ``LabelerTorchRLEnv``.

The recipe of TorchRL's multi-agent PPO tutorial: a shared ``MultiAgentMLP`` policy over the
``"labelers"`` group with a ``TanhNormal`` bounded to the action spec, a critic that sees every
labeler's observation (MAPPO, ``--centralised``) or only its own (IPPO), GAE and the clipped
PPO loss; the collector steps ``num_envs`` games at once on ``--device``. Prints the mean
reward (true utility) and the mean DSIC gain per iteration::

    python -m strategic_feedback_env.experiments.torchrl_mappo --iterations 5 --num-envs 256

Needs ``torchrl`` (``pip install -e .[torchrl]``).
"""

from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torch import nn
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
from torchrl.objectives import ClipPPOLoss, ValueEstimators

from strategic_feedback_env.torchrl import LabelerTorchRLEnv


def train(game="reward_report_v0", num_envs=256, iterations=5, frames_per_batch=None, epochs=4,
          minibatch=1024, lr=3e-4, centralised=True, device="cpu", seed=0, **config):
    """Train and return one dict per iteration: ``reward`` and ``gain`` (means over the batch)."""
    torch.manual_seed(seed)
    env = LabelerTorchRLEnv(game, num_envs=num_envs, device=device, seed=seed, **config)
    group = env.group
    n, obs_dim = env.game.n, env.game.obs_dim
    act_spec = env.full_action_spec[group, "action"]
    frames_per_batch = frames_per_batch or num_envs * env.game.max_cycles

    policy_net = nn.Sequential(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=2 * act_spec.shape[-1], n_agents=n,
                      centralised=False, share_params=True, device=device, depth=2, num_cells=64,
                      activation_class=nn.Tanh),
        NormalParamExtractor(),
    )
    policy = ProbabilisticActor(
        TensorDictModule(policy_net, in_keys=[(group, "observation")], out_keys=[(group, "loc"), (group, "scale")]),
        spec=act_spec, in_keys=[(group, "loc"), (group, "scale")], out_keys=[(group, "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": act_spec.space.low[0, 0], "high": act_spec.space.high[0, 0]},  # one labeler's bounds
        return_log_prob=True, log_prob_key=(group, "sample_log_prob"))
    critic = TensorDictModule(
        MultiAgentMLP(n_agent_inputs=obs_dim, n_agent_outputs=1, n_agents=n, centralised=centralised,
                      share_params=True, device=device, depth=2, num_cells=64, activation_class=nn.Tanh),
        in_keys=[(group, "observation")], out_keys=[(group, "state_value")])

    collector = Collector(env, policy, frames_per_batch=frames_per_batch,
                                  total_frames=frames_per_batch * iterations, device=device,
                                  auto_register_policy_transforms=False)
    buffer = ReplayBuffer(storage=LazyTensorStorage(frames_per_batch, device=device),
                          sampler=SamplerWithoutReplacement(), batch_size=minibatch)
    loss = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=0.2, entropy_coeff=1e-3,
                       normalize_advantage=False)
    loss.set_keys(reward=env.reward_key, action=env.action_key, sample_log_prob=(group, "sample_log_prob"),
                  value=(group, "state_value"), done=(group, "done"), terminated=(group, "terminated"))
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.99, lmbda=0.9)
    optim = torch.optim.Adam(loss.parameters(), lr)

    history = []
    for batch in collector:
        with torch.no_grad():
            loss.value_estimator(batch, params=loss.critic_network_params, target_params=loss.target_critic_network_params)
        buffer.extend(batch.reshape(-1))
        for _ in range(epochs):
            for _ in range(max(1, frames_per_batch // minibatch)):
                losses = loss(buffer.sample())
                total = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
                optim.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optim.step()
        collector.update_policy_weights_()
        history.append({"reward": float(batch["next", group, "reward"].mean()),
                        "gain": float(batch["next", group, "info", "gain"].mean())})
    collector.shutdown()
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="reward_report_v0")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ippo", action="store_true", help="decentralised critics (IPPO) instead of MAPPO")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    history = train(args.game, num_envs=args.num_envs, iterations=args.iterations, centralised=not args.ippo,
                    device=args.device, seed=args.seed)
    for i, row in enumerate(history):
        print(f"iteration {i}: mean reward {row['reward']:.4f}, mean DSIC gain {row['gain']:+.5f}")


if __name__ == "__main__":  # pragma: no cover
    main()
