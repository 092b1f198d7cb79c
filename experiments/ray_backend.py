"""Run independent experiment cells locally or as Ray tasks ("Scale out on Ray").

A *cell* is a picklable dict or tuple describing one unit of work (for example one
``(strategy, mechanism, horizon)`` of the regret sweep, with its seed). ``run_cells(fn, cells)``
evaluates ``fn(cell)`` for every cell and returns the results **in the order of** ``cells``,
whichever backend ran them. ``fn`` must derive all of its randomness from the cell (its seed),
never from global state, so the local and the Ray backends return identical results.

Ray is optional: ``pip install strategic-feedback-env[ray]``. Without it the ``local`` backend
works as usual and ``backend="ray"`` raises :class:`RayNotInstalledError` saying how to install it.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable, Sequence

from .options import int_at_least
from .progress import progress_bar

BACKENDS = ("local", "ray")
INSTALL_HINT = "install the extra: pip install strategic-feedback-env[ray]"


class RayNotInstalledError(ImportError, ValueError):
    """``backend="ray"`` was asked for but the ``ray`` package cannot be imported.

    Also a ``ValueError`` so that ``sfe`` reports it as a one-line user error (exit code 2)."""


def import_ray():
    """Import and return ``ray``, or raise :class:`RayNotInstalledError` with the install hint."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(f"backend 'ray' needs the ray package ({exc}); {INSTALL_HINT}") from exc
    return ray


def _ensure_ray(address: str | None, num_cpus: int | None):
    """``ray.init`` unless Ray is already up; return ``(ray, started_here)``."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray, True


def _run_local(fn, cells, bar, on_result):
    out = []
    for i, cell in enumerate(cells):
        out.append(fn(cell))
        on_result(i, out[-1])
        bar.update(1)
    return out


def _apply(fn, cell):
    """The Ray task: ``fn`` travels as an argument, so partials and callables work too."""
    return fn(cell)


def _run_ray(fn, cells, address, num_cpus, bar, shutdown, on_result):
    ray, started = _ensure_ray(address, num_cpus)
    try:
        remote_fn = ray.remote(_apply)
        refs = [remote_fn.remote(fn, cell) for cell in cells]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                results[i] = ray.get(ref)
                on_result(i, results[i])
                bar.update(1)
        return results
    finally:
        if started and shutdown:
            ray.shutdown()


def run_cells(fn: Callable[[Any], Any], cells: Iterable[Any], backend: str = "local", address: str | None = None,
              num_cpus: int | None = None, progress: bool = True, shutdown: bool = False,
              on_result: Callable[[int, Any], None] | None = None) -> list:
    """Evaluate ``fn(cell)`` for each cell; return the results in the order of ``cells``.

    ``backend="local"`` runs the cells one after another in this process. ``backend="ray"``
    submits each cell as a Ray task (``ray.remote(fn)``): to the cluster at ``address``
    (e.g. ``"auto"`` or ``"ray://head:10001"``) if given, else to a local Ray started with
    ``num_cpus`` CPUs (None: all). An already initialised Ray is reused as it is. ``fn`` and the
    cells must be picklable (``fn`` a module-level function). With ``shutdown=True`` a Ray
    started here is shut down afterwards (by default it is kept for the next call).
    ``on_result(i, result)`` is called in this process as soon as cell ``i`` finishes (in any
    order on Ray), e.g. to save it, so an interrupted run keeps every finished cell.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if num_cpus is not None and (int(num_cpus) != num_cpus or num_cpus < 1):
        raise ValueError(f"num_cpus must be a positive integer, got {num_cpus!r}")
    cells: Sequence[Any] = list(cells)
    on_result = on_result or (lambda i, result: None)
    with progress_bar(len(cells), f"cells ({backend})", bool(progress)) as bar:
        if backend == "local":
            return _run_local(fn, cells, bar, on_result)
        return _run_ray(fn, cells, address, num_cpus, bar, shutdown, on_result)


def add_backend_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--backend {local,ray}``, ``--address`` and ``--num-cpus`` to ``parser``."""
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="where cells run: in this process (local, default) or as Ray tasks (ray; "
                             "needs the [ray] extra)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (e.g. auto or ray://host:10001); default: start a local Ray")
    parser.add_argument("--num-cpus", dest="num_cpus", type=int_at_least(1), default=None,
                        help="CPUs for a local Ray (default: all)")
    return parser


__all__ = ["BACKENDS", "INSTALL_HINT", "RayNotInstalledError", "add_backend_arguments", "import_ray", "run_cells"]
