from .preference_report import preference_report as _game_module
from .preference_report.preference_report import (  # noqa: F401
    PreferenceReportEnv,
    env,
    observation_layout,
    parallel_env,
    raw_env,
)

__doc__ = _game_module.__doc__  # help() of the versioned module shows every option

__all__ = ["PreferenceReportEnv", "env", "observation_layout", "parallel_env", "raw_env"]
