"""How much memory a run will need, estimated from its options before anything is allocated.

The estimates are upper-end counts of the arrays that grow with the options (measured with
``tracemalloc`` on this code: a reward-report game holds about 64 float64 arrays of ``n x K``
plus ~8 kB per labeler of PettingZoo spaces and dicts; an online game ~12 kB per labeler; the
Table 1 chunk ~8 arrays of ``chunk x n x K``, the Thm 4.12 sweep ~100). A run that would need
more than the memory available is refused with the amount, instead of a ``MemoryError`` or
the OOM killer part-way through.
"""

from __future__ import annotations

import os

FLOAT = 8
TABLE1_N, TABLE1_K, TABLE1_CHUNK, TABLE1_EPS = 5, 10, 20_000, 7


def available_bytes() -> int | None:
    """Memory this process can still get: ``MemAvailable`` of ``/proc/meminfo``, else the free
    physical pages; ``None`` where neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def require(nbytes: float, options: str) -> None:
    """``ValueError`` if ``nbytes`` exceed the memory available, naming the ``options`` that need it."""
    available = available_bytes()
    if available is not None and nbytes > available:
        raise ValueError(f"{options} need about {_size(nbytes)} of memory; {_size(available)} is available")


def game_bytes(game: str, n: int, K: int = 0) -> float:
    """One game object and a round of play (docs/model.md §1, §2)."""
    if game == "reward_report_v0":
        return 64 * FLOAT * n * K + 8e3 * n
    return 12e3 * n


def obs_dim(game: str, K: int) -> int:
    return 2 * K + 2 if game == "reward_report_v0" else 6


def learner_bytes(algo: str, game: str, n: int, K: int, timesteps: int, shared: bool = False) -> float:
    """SB3's buffers: PPO's rollout (32 steps x 8 envs), SAC's replay buffer (``min(50000,
    timesteps)``); a shared policy sees ``n`` slots per game and a one-hot id."""
    dim = obs_dim(game, K) + (n if shared else 0)
    slots = (4 if shared else 8) * (n if shared else 1)
    act = K + 1 if game == "reward_report_v0" else 1
    if algo == "sac":
        return 4 * min(50_000, timesteps) * (2 * dim + act) * (n if shared else 1)
    return 4 * 4 * 32 * slots * (dim + act)


def reproduce_bytes(samples: int, noise_samples: int) -> float:
    chunk = min(samples, TABLE1_CHUNK)
    table1 = 8 * FLOAT * chunk * TABLE1_N * TABLE1_K + 4 * TABLE1_EPS * FLOAT * samples
    noisy = 100 * FLOAT * noise_samples * TABLE1_N * TABLE1_K
    return max(table1, noisy)


def regret_bytes(n: int, games: int) -> float:
    return game_bytes("online_feedback_v0", n) + 40 * FLOAT * games * n
