from .online_feedback import online_feedback as _game_module
from .online_feedback.online_feedback import (  # noqa: F401
    OBSERVATION_LAYOUT,
    OnlineFeedbackEnv,
    env,
    parallel_env,
    raw_env,
)

__doc__ = _game_module.__doc__  # help() of the versioned module shows every option

__all__ = ["OBSERVATION_LAYOUT", "OnlineFeedbackEnv", "env", "parallel_env", "raw_env"]
