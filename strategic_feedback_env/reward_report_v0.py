from .reward_report.reward_report import (  # noqa: F401
    RewardReportEnv,
    env,
    observation_layout,
    parallel_env,
    raw_env,
)

__all__ = ["RewardReportEnv", "env", "observation_layout", "parallel_env", "raw_env"]
