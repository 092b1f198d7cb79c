"""The torch side of ``sfe bench`` (project issue "Performance: the batched games on torch"):

* the batched game (``reward_report_v0``, n=5, K=10, affine maximizer) on the torch backend
  against the numpy backend at several ``B``, on the CPU and, when torch sees one, on the GPU
  (its name is printed); labeler-steps/s, the ratio to numpy at the same ``B``;
* the native TorchRL env (:class:`strategic_feedback_env.torchrl.LabelerTorchRLEnv`) against
  TorchRL's ``PettingZooWrapper`` over the ParallelEnv, both driven by ``env.rollout`` with
  random actions from the action spec (labeler-steps/s, same process);
* peak memory of a step, the terminal step's reset included, per element of the ``(B, n, K)``
  float64 array, step by step in each ``autoreset`` mode (``same_step``: a round and the
  terminal round with its reset; ``next_step``: a round, the terminal round and the reset step
  after it): numpy by tracemalloc, torch on the CPU by the running total of the allocation and
  free events that torch's profiler records (every allocation, also those inside an operator),
  on the GPU by the CUDA allocator;
* scaling of the torch backend: seconds per element of ``n K`` (B=1, K=10, n growing), and its
  ratio to the cost at ``n K = 1e4``.

torch runs with one thread (as numpy does) so the ratios compare the same CPU time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import tracemalloc

import numpy as np

from .bench import _batched_rate, _log, _timed

__all__ = ["format_torch_bench", "run_torch_bench"]


def _devices():
    import torch

    devices = [("cpu", "cpu")]
    if torch.cuda.is_available():
        devices.append(("cuda", torch.cuda.get_device_name(0)))
    return devices


def _backend_rows(batches, min_time, seed, progress):
    rows = []
    numpy_rate = {}
    for device, name in _devices():
        for B in batches:
            if device == "cpu":
                rate, n = _batched_rate(B, min_time, seed)
                numpy_rate[B] = rate * B * n
            rate, n = _batched_rate(B, min_time, seed, backend="torch", device=device)
            rows.append({"device": device, "device_name": name, "B": B, "labeler_steps_per_s": rate * B * n,
                         "numpy_labeler_steps_per_s": numpy_rate[B], "ratio_vs_numpy": rate * B * n / numpy_rate[B]})
            _log(progress, f"torch backend on {name}, B={B}: {rows[-1]['labeler_steps_per_s']:,.0f} labeler-steps/s "
                           f"(x{rows[-1]['ratio_vs_numpy']:.2f} numpy)")
    return rows


def _rollout_rate(env, steps, labelers_per_step):
    env.rollout(2, break_when_any_done=False)  # warm-up
    t0 = time.perf_counter()
    env.rollout(steps, break_when_any_done=False)
    return steps * labelers_per_step / (time.perf_counter() - t0)


def _torchrl_rows(steps, seed, progress):
    import warnings

    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    from strategic_feedback_env import reward_report_v0
    from strategic_feedback_env.torchrl import LabelerTorchRLEnv

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchRL warns that it was tested with another PettingZoo release
        game = reward_report_v0.parallel_env()
        wrapper = PettingZooWrapper(env=game, group_map={"labelers": list(game.possible_agents)}, seed=seed)
    base = _rollout_rate(wrapper, steps, game.n)
    rows.append({"name": "PettingZooWrapper(reward_report_v0.parallel_env())", "B": 1, "labeler_steps_per_s": base})
    for B in (1, 1024):
        env = LabelerTorchRLEnv("reward_report_v0", num_envs=B, seed=seed)
        rows.append({"name": "LabelerTorchRLEnv", "B": B,
                     "labeler_steps_per_s": _rollout_rate(env, steps, B * env.game.n)})
    for r in rows:
        r["ratio_vs_wrapper"] = r["labeler_steps_per_s"] / base
        _log(progress, f"{r['name']} B={r['B']}: {r['labeler_steps_per_s']:,.0f} labeler-steps/s "
                       f"(x{r['ratio_vs_wrapper']:.1f} the wrapper)")
    return rows


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 sent to /dev/null (the profiler's C++ side logs its start and stop there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _torch_cpu_peak(step):
    """The peak of torch's CPU allocations during ``step()`` over what was allocated before it: the
    running total of the profiler's memory events (``+bytes`` per allocation, ``-bytes`` per free)."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    total = peak = 0
    for e in events:
        total += e.nbytes()
        peak = max(peak, total)
    del result
    return peak


def _step_peaks(env, actions, measure):
    """``(step, held, peak over held)`` in bytes of each step of an episode of two rounds
    (``max_cycles=2``): the first round and the terminal round (with its reset in ``same_step``
    mode), and in ``next_step`` mode the reset step after it."""
    labels = ("round", "terminal+reset") if env.autoreset == "same_step" else ("round", "terminal", "reset")
    out = []
    for label in labels:
        gc.collect()
        out.append((label, *measure(lambda: env.step(actions))))
    return out


def _held_bytes(env, actions):
    """Bytes of the tensors the env (and its mechanism) hold, plus the actions."""
    import torch

    objects = [*vars(env).values(), *vars(env.mechanism).values()]
    return actions.nbytes + sum(v.nbytes for v in objects if isinstance(v, torch.Tensor))


def _numpy_peak(step):
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    result = step()
    peak = tracemalloc.get_traced_memory()[1] - held
    del result
    return held, peak


def _memory_rows(B, progress, seed, n=5, K=10):
    import torch

    from strategic_feedback_env.batched import AUTORESET_MODES, make_batched

    config = {"n_labelers": n, "n_outcomes": K, "max_cycles": 2}
    unit = B * n * K * 8
    rows = []
    for autoreset in AUTORESET_MODES:
        tracemalloc.start()
        try:
            env = make_batched("reward_report_v0", B, seed, autoreset=autoreset, **config)
            actions = np.random.default_rng(seed).random(env.action_space.shape)
            env.reset()
            steps = _step_peaks(env, actions, _numpy_peak)
        finally:
            tracemalloc.stop()
        rows += [{"backend": "numpy", "autoreset": autoreset, "step": step, "measured_by": "tracemalloc",
                  "held": held / unit, "step_peak": peak / unit} for step, held, peak in steps]
        del env, actions
    for device, name in _devices():
        if device == "cpu":
            def measure(step):
                return _held_bytes(env, actions), _torch_cpu_peak(step)
        else:
            def measure(step):
                torch.cuda.synchronize()
                held = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                result = step()
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - held
                del result
                return held, peak
        for autoreset in AUTORESET_MODES:
            gc.collect()
            env = make_batched("reward_report_v0", B, seed, backend="torch", device=device, autoreset=autoreset,
                               **config)
            actions = torch.rand(env.action_space.shape, dtype=torch.float64, device=device)
            env.reset()
            rows += [{"backend": f"torch ({name})", "autoreset": autoreset, "step": step,
                      "measured_by": "profiler" if device == "cpu" else "CUDA allocator",
                      "held": held / unit, "step_peak": peak / unit}
                     for step, held, peak in _step_peaks(env, actions, measure)]
            del env, actions
    for r in rows:
        r["total"] = r["held"] + r["step_peak"]
        _log(progress, f"memory, {r['backend']}, {r['autoreset']} {r['step']}: step peak {r['step_peak']:.2f}x, "
                       f"held {r['held']:.2f}x")
    return rows


def _scaling_rows(values, min_time, seed, progress, K=10):
    import torch

    from strategic_feedback_env.batched import make_batched

    rows = []
    for device, name in _devices():
        sync = torch.cuda.synchronize if device == "cuda" else None
        for nk in values:
            env = make_batched("reward_report_v0", 1, seed, backend="torch", device=device,
                               n_labelers=nk // K, n_outcomes=K)
            env.reset()
            actions = torch.rand(env.action_space.shape, dtype=torch.float64, device=device)
            calls, elapsed = _timed(lambda: env.step(actions), min_time, min_iters=1, sync=sync)
            rows.append({"device": device, "device_name": name, "nK": nk, "step_s": elapsed / calls,
                         "s_per_element": elapsed / calls / nk})
        ref = next(r["s_per_element"] for r in rows if r["device"] == device and r["nK"] == 10**4)
        for r in rows:
            if r["device"] == device:
                r["ratio_vs_1e4"] = r["s_per_element"] / ref
        _log(progress, f"torch scaling on {name} done")
    return rows


def run_torch_bench(quick=False, seed=0, progress=True) -> dict:
    """The four torch measurements (see the module docstring) as plain rows; ``{"notes": [...]}``
    only where torch or torchrl is missing."""
    try:
        import torch
    except ImportError as exc:
        return {"notes": [f"torch benchmark skipped: {exc}"]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        min_time = 0.2 if quick else 2.0
        batches = [64, 4096] if quick else [64, 1024, 4096, 32768]
        out = {"backend": _backend_rows(batches, min_time, seed, progress), "notes": []}
        try:
            out["torchrl"] = _torchrl_rows(30 if quick else 300, seed, progress)
        except ImportError as exc:
            out["notes"].append(f"TorchRL comparison skipped: {exc}")
        games = 20_000 if quick else 200_000  # B*n*K = 1e6 / 1e7 (the size)
        out["memory"] = _memory_rows(games, progress, seed)
        out["memory_elements"] = games * 50
        values = [10**3, 10**4, 10**5] if quick else [10**3, 10**4, 10**5, 10**6]
        out["scaling"] = _scaling_rows(values, 0.1 if quick else 1.0, seed, progress)
        return out
    finally:
        torch.set_num_threads(threads)


# (result key, the table's title from the result, one row's line)
_TABLES = (
    ("backend",
     lambda res: "Torch backend of the batched game (reward_report_v0, n=5, K=10, affine_maximizer; one thread)",
     lambda r: f"  {r['device_name']:<24} B={r['B']:<6} {r['labeler_steps_per_s']:>14,.0f} labeler-steps/s  "
               f"x{r['ratio_vs_numpy']:.2f} numpy ({r['numpy_labeler_steps_per_s']:,.0f})"),
    ("torchrl",
     lambda res: "TorchRL: native env against PettingZooWrapper over the ParallelEnv (env.rollout, random actions)",
     lambda r: f"  {r['name']:<52} B={r['B']:<5} {r['labeler_steps_per_s']:>12,.0f} labeler-steps/s  "
               f"x{r['ratio_vs_wrapper']:.1f}"),
    ("memory",
     lambda res: f"Peak memory of a step (terminal step with its reset included), in (B, n, K) float64 arrays, "
                 f"B*n*K = {res['memory_elements']:.0e}, per autoreset mode",
     lambda r: f"  {r['backend']:<24} {r['autoreset']:<9} {r['step']:<14} step peak {r['step_peak']:5.2f}x over "
               f"the held {r['held']:4.2f}x (env state + actions) = {r['total']:5.2f}x in all  [{r['measured_by']}]"),
    ("scaling",
     lambda res: "Torch backend scaling (B=1, K=10, n = nK/10): seconds per step and per element of n*K",
     lambda r: f"  {r['device_name']:<24} n*K={r['nK']:<8.0e} {r['step_s']:.3e} s/step  "
               f"{r['s_per_element'] * 1e9:9.2f} ns/element  x{r['ratio_vs_1e4']:.2f} the cost at 1e4"),
)


def format_torch_bench(result: dict) -> list[str]:
    """Plain-text tables of :func:`run_torch_bench`'s result."""
    lines = []
    for key, title, row in _TABLES:
        if key in result:
            lines.append(title(result))
            lines += [row(r) for r in result[key]]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    return lines
