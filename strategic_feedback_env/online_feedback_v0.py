from .online_feedback.online_feedback import (  # noqa: F401
    OBSERVATION_LAYOUT,
    OnlineFeedbackEnv,
    env,
    parallel_env,
    raw_env,
)

__all__ = ["OBSERVATION_LAYOUT", "OnlineFeedbackEnv", "env", "parallel_env", "raw_env"]
