"""The batched games' backend choice and their memory bound.

A batched step (reset included) of ``B`` games with ``n`` labelers and report width ``K`` (the
reward vector's ``K``; 2 for the online game's pair) holds at most :data:`PEAK_FACTOR` times
the ``(B, n, K)`` float64 array at its peak, counting the caller's actions, the env's state,
the returned observations and infos and every temporary (measured by ``sfe bench`` and
tests/test_batched_memory.py: tracemalloc for numpy, the allocator for torch). A game whose
bound exceeds the memory available on its device is refused before anything is allocated.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("numpy", "torch")
PEAK_FACTOR = 8


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


def peak_bytes(num_games: int, n: int, width: int) -> int:
    """The bound on a step's peak: :data:`PEAK_FACTOR` ``(B, n, K)`` float64 arrays."""
    return PEAK_FACTOR * num_games * n * width * np.dtype(np.float64).itemsize


def check_memory(num_games: int, n: int, width: int, device=None) -> None:
    """Refuse (``ValueError``) a game whose step would need more than the free memory."""
    need, free = peak_bytes(num_games, n, width), available_bytes(device)
    if need > free:
        where = "on the host" if device is None or device.type != "cuda" else f"on {device}"
        raise ValueError(
            f"num_games={num_games} with n={n} labelers and width K={width} needs about {need / 2**30:.3g} GiB "
            f"at a step's peak ({PEAK_FACTOR} x the (B, n, K) float64 array of {need / PEAK_FACTOR / 2**30:.3g} GiB), "
            f"but only {free / 2**30:.3g} GiB are available {where}; use fewer games")
