"""The batched games' backend choice and their memory bound.

Unit: the ``(B, n, W)`` float64 array of ``B`` games with ``n`` labelers and width ``W`` (the
games' ``report_width``: ``K + 2`` for the reward-report game, the ``(B, n, K)`` reports plus two
columns for its dozen per-labeler ``(B, n)`` infos, which dominate at small ``K``; 6 for the
online game, its observation width and widest array; ``K (K + c) + m + 2`` for the preference
game, whose Bradley-Terry fits hold a ``(c, K)`` incidence and a ``(K, K)`` Newton system per
labeler for ``c`` comparisons: ``m``, or ``n m`` for the pooled fit of each deviation profile).

* Before a step the env's state and the caller's actions hold at most :data:`HELD_FACTOR`
  units; together with what the step (the terminal step's reset included) allocates at its
  peak over them (temporaries, the returned observations and infos) they hold at most
  ``HELD_FACTOR + PEAK_FACTOR = 8`` units. Mechanisms without ``O(n K)`` counterfactuals
  (``median``, ``median_of_mles`` and any rule left on the generic
  ``Mechanism.unilateral_outcomes``) run ``n`` deviation profiles: ``HELD_FACTOR + n
  PEAK_FACTOR``.
* Measured (tracemalloc, ``B n W`` of about 1e6, every mechanism, ``K`` from 1 to 100, noise,
  sizes, the online and preference games): at most 7.9 units in all for one profile, 2.8 held.
  The reward-report game's terminal step ends holding the actions, ``report``, the final and
  the new observation (``2K + 2`` columns each; ``true_reward`` is a view of the final one, and
  the new episode's rewards are drawn straight into the new one's reward columns and held
  nowhere else until the next round draws them again from the generator state they came from:
  ``BatchedRewardReport.rewards``), the ``(B, K)`` policy (handed over on the last round, not
  copied) and eight ``(B, n)`` arrays (the infos and the new sizes): ``(6 + 1/n) K + 12``
  columns' worth, 7.4 ``(B, n, K)`` arrays at ``n = 5, K = 10`` (6.2 units); the returned
  arrays alone are ``(5 + 1/n) K + 11`` of them.
* Per ``autoreset`` mode (the bound above holds in both): in ``"same_step"`` mode (default) the
  terminal step is the one above. In ``"next_step"`` mode the terminal step draws no types and
  builds one observation, and the reset step after it plays no round (it holds the old state,
  the actions, the new sizes and the new observation). Measured by ``sfe bench`` at
  ``B n K = 1e7`` (``n = 5, K = 10``, in ``(B, n, K)`` arrays, held + peak): ``same_step``
  round 7.5, terminal 7.7; ``next_step`` round 7.5, terminal 6.3, reset 4.6 (numpy; torch on the
  CPU 7.8, 7.6 and 7.7, 7.1, 4.5): the issue's 8 ``(B, n, K)`` arrays hold on every step in both
  modes there, and for ``n >= 5, K >= 10`` (tests/test_batched_autoreset.py). Below that the
  ``(B, n)`` infos (``K = 4``: 9.1 a round) or the ``(B, K)`` policies (``n = 1``: 9.3) weigh
  more than ``(B, n, K)`` arrays can carry; the bound in its own unit holds there too.

Checked by tests/test_batched_torch.py and tests/test_batched_autoreset.py (tracemalloc, the
profiler's events) and reported by ``sfe bench`` (tracemalloc
for numpy; torch's profiler's allocation events for torch on the CPU; the CUDA allocator's
peak). A game whose bound exceeds the memory available on its device is refused before anything
is allocated.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("numpy", "torch")
PEAK_FACTOR = 5  # a step's peak over what is held, in either autoreset mode
HELD_FACTOR = 3


def check_backend(backend, device, dtype):
    """``(backend, device, dtype)`` checked: numpy takes neither ``device`` nor ``dtype`` (its
    arrays are float64); torch takes a device string or ``torch.device`` (default ``"cpu"``) and
    ``torch.float64`` (default) or ``torch.float32`` (or their names)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        if device is not None or dtype is not None:
            raise ValueError("device and dtype apply to backend='torch' only (the numpy backend is float64 on the CPU)")
        return backend, None, None
    import torch

    dtypes = {"float64": torch.float64, "float32": torch.float32, torch.float64: torch.float64,
              torch.float32: torch.float32, None: torch.float64}
    if not isinstance(dtype, (str, torch.dtype, type(None))) or dtype not in dtypes:
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    return backend, dev, dtypes[dtype]


def available_bytes(device=None) -> int:
    """Free memory on ``device``: the CUDA allocator's free bytes, else the host's available RAM."""
    if device is not None and device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def unit_bytes(num_games: int, n: int, width: int) -> int:
    """Bytes of the ``(B, n, K)`` float64 array."""
    return num_games * n * width * np.dtype(np.float64).itemsize


def deviation_profiles(mechanism, n: int) -> int:
    """1 for mechanisms with ``O(n K)`` counterfactuals; ``n`` for those that run the ``n``
    deviation profiles as a batch."""
    from strategic_feedback_env.mechanisms import Mechanism, Median

    generic = type(mechanism).unilateral_outcomes is Mechanism.unilateral_outcomes
    return n if generic or isinstance(mechanism, Median) else 1


def bound_bytes(num_games: int, n: int, width: int, profiles: int = 1) -> int:
    """The bound on the state, the actions and a step's peak together:
    ``HELD_FACTOR + PEAK_FACTOR * profiles`` units."""
    return (HELD_FACTOR + PEAK_FACTOR * profiles) * unit_bytes(num_games, n, width)


def check_memory(num_games: int, n: int, width: int, profiles: int = 1, device=None) -> None:
    """Refuse (``ValueError``) a game whose state plus a step's peak exceed the free memory."""
    unit = unit_bytes(num_games, n, width)
    need, free = bound_bytes(num_games, n, width, profiles), available_bytes(device)
    if need > free:
        where = "on the host" if device is None or device.type != "cuda" else f"on {device}"
        raise ValueError(
            f"num_games={num_games} with n={n} labelers and width W={width} needs about {need / 2**30:.3g} GiB "
            f"({HELD_FACTOR + PEAK_FACTOR * profiles} x the (B, n, W) float64 array of {unit / 2**30:.3g} GiB: "
            f"the state and a step's peak), but only {free / 2**30:.3g} GiB are available {where}; "
            f"use fewer games")
