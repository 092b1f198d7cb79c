from .reward_report import reward_report as _game_module
from .reward_report.reward_report import (  # noqa: F401
    RewardReportEnv,
    env,
    observation_layout,
    parallel_env,
    raw_env,
)

__doc__ = _game_module.__doc__  # help() of the versioned module shows every option

__all__ = ["RewardReportEnv", "env", "observation_layout", "parallel_env", "raw_env"]
