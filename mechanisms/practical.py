"""The [SUN] mechanism as it is actually run: a training rule with a finite budget, a cheap
payment rule, or a finite menu (docs/model.md §4).

:class:`Training` holds the choices; :func:`practical_core` computes the outcome from the
weighted reports. With ``theta^`` the trained policy, ``S_{-i} = S - w_i r_i`` and
``ASW_{-i}(theta) = <theta, S_{-i}> - lam D(theta || ref)`` (so ``ASW_{-i}(theta^) =
ASW(theta^) - w_i <theta^, r_i>``), every payment rule is

    p_i = L_i - ASW_{-i}(theta^)

with the leave-one-out term ``L_i``: ``"exact"`` the exact optimum ``max ASW_{-i}``,
``"same_solver"`` ``ASW_{-i}`` of the same solver run on ``S_{-i}``, ``"checkpoints"``
([SUN] Heuristic 1) ``max_t ASW_{-i}(theta_t)`` over the main run's iterates ``theta_0 ..
theta_T``, ``"early_stopped"`` ([SUN] Heuristic 2) ``ASW_{-i}`` of ``payment_steps``
mirror-ascent steps on ``S_{-i}``; with a menu, ``max_m ASW_{-i}(theta_m)`` over the menu.
Labeler ``i``'s utility is then ``ASW_true(theta^) - L_i``: only rules whose ``L_i`` ignores
``i``'s report (exact, early-stopped, fixed menu) keep the incentive to move ``theta^`` toward
the true optimum, and with exact ``L_i`` a misreport gains at most the optimisation gap
``ASW(theta*) - ASW(theta^)`` of the truthful run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._ops import NumpyOps
from .menus import check_menu, choose, soup_weights
from .regularizers import SOLVERS as EXACT_SOLVERS
from .regularizers import VALUE_SOLVERS, regularised_welfare
from .solvers import SOLVERS, check_step_size, mirror_ascent, policy_gradient
from .validation import check_positive_int

PAYMENTS = ("exact", "same_solver", "checkpoints", "early_stopped")


@dataclass(frozen=True)
class Training:
    """How the platform trains and charges (validated by :meth:`build`)."""

    solver: str = "exact"
    steps: int = 10
    step_size: float = 1.0
    samples_per_step: int = 8
    seed: int = 0
    payment: str = "exact"
    payment_steps: int | None = None
    menu: object = None
    menu_size: int | None = None

    @classmethod
    def build(cls, lam, regularizer, with_payments, solver="exact", steps=10, step_size=1.0, samples_per_step=8,
              seed=0, payment="exact", payment_steps=None, menu=None, menu_size=None) -> "Training":
        """Check every choice; each failure is a ``ValueError`` naming the parameter."""
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if payment not in PAYMENTS:
            raise ValueError(f"payment must be one of {PAYMENTS}, got {payment!r}")
        steps = check_positive_int(steps, "steps")
        samples_per_step = check_positive_int(samples_per_step, "samples_per_step", minimum=2)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        iterative = solver != "exact" or payment == "early_stopped"
        step_size = check_step_size(step_size, lam, regularizer if iterative else None)
        if payment == "early_stopped":
            if payment_steps is None:
                raise ValueError("payment='early_stopped' needs payment_steps (an integer >= 1)")
            payment_steps = check_positive_int(payment_steps, "payment_steps")
        elif payment_steps is not None:
            raise ValueError(f"payment_steps only applies to payment='early_stopped', got payment={payment!r}")
        if payment == "checkpoints" and solver == "exact":
            raise ValueError("payment='checkpoints' needs an iterative solver ('mirror_ascent' or 'policy_gradient')")
        if payment != "exact" and not with_payments:
            raise ValueError(f"payment={payment!r} needs a mechanism with payments (affine_maximizer)")
        if isinstance(menu, str):
            if menu != "soups":
                raise ValueError(f"menu must be an (M, K) array of candidate policies or 'soups', got {menu!r}")
            if menu_size is not None:
                menu_size = check_positive_int(menu_size, "menu_size")
        elif menu is not None:
            menu = check_menu(menu)
            if solver != "exact":
                raise ValueError(f"a fixed menu is not trained: solver must be 'exact', got {solver!r}")
        if menu_size is not None and not isinstance(menu, str):
            raise ValueError("menu_size only applies to menu='soups'")
        if menu is not None and payment != "exact":
            raise ValueError(f"a menu's payments are the affine maximizer over the menu: payment must be "
                             f"'exact', got {payment!r}")
        return cls(solver, steps, step_size, samples_per_step, int(seed), payment, payment_steps, menu, menu_size)

    @property
    def is_exact(self) -> bool:
        """True for the closed-form optimum with exact payments (the theorems' case)."""
        return self.solver == "exact" and self.payment == "exact" and self.menu is None

    @property
    def differentiable(self) -> bool:
        """False where the outcome is piecewise constant or sampled in the reports (menus,
        policy gradient): no gradient adversary there."""
        return self.menu is None and self.solver != "policy_gradient"

    def params(self) -> dict:
        menu = self.menu.tolist() if isinstance(self.menu, np.ndarray) else self.menu
        return {"solver": self.solver, "steps": self.steps, "step_size": self.step_size,
                "samples_per_step": self.samples_per_step, "seed": self.seed, "menu": menu,
                "menu_size": self.menu_size}

    def iterates(self, S, lam, ref, regularizer, ops=NumpyOps):
        """The training run on scores ``S`` ``(..., K)``: iterates ``(T + 1, ..., K)`` (the exact
        solver: one "iterate", the optimum)."""
        if self.solver == "exact":
            return EXACT_SOLVERS[regularizer](S, lam, ref, ops)[0][None]
        if self.solver == "mirror_ascent":
            return mirror_ascent(S, lam, ref, regularizer, self.steps, self.step_size, ops)
        uniforms = np.random.default_rng(self.seed).random((self.steps, self.samples_per_step))
        return policy_gradient(S, lam, ref, regularizer, self.steps, self.step_size, uniforms, ops)


def practical_core(training: Training, reports, weighted, lam, ref, regularizer, with_payments, ops=NumpyOps):
    """From the reports ``(..., n, K)`` and weighted reports ``w_i r_i``: ``(policy, value,
    payments or None, gap)`` with ``value = ASW(theta^)`` and ``gap = max ASW - ASW(theta^)``
    under the reported scores (module docstring)."""
    scores = ops.sum_rows(weighted)
    optimum = VALUE_SOLVERS[regularizer](scores, lam, ref, ops)
    without = scores[..., None, :] - weighted
    loo_ref = ref[..., None, :]
    if training.menu is None:
        iterates = training.iterates(scores, lam, ref, regularizer, ops)
        policy = iterates[-1]
    else:
        menu = training.menu
        if isinstance(menu, str):
            mix = soup_weights(reports.shape[-2], training.menu_size)  # (M, n)
            menu = training.iterates(np.einsum("mn,...nk->...mk", mix, reports), lam, loo_ref, regularizer)[-1]
        elif menu.shape[-1] != scores.shape[-1]:
            raise ValueError(f"menu has K={menu.shape[-1]} outcomes but the reports have K={scores.shape[-1]}")
        policy, _ = choose(menu, scores, lam, ref, regularizer)
    value = regularised_welfare(policy, scores, lam, ref, regularizer, ops)
    if not with_payments:
        return policy, value, None, optimum - value
    own_asw = regularised_welfare(policy[..., None, :], without, lam, loo_ref, regularizer, ops)  # ASW_{-i}(theta^)
    if training.menu is not None:
        loo = regularised_welfare(menu[..., None, :, :], without[..., None, :], lam, loo_ref[..., None, :],
                                  regularizer, ops).max(axis=-1)
    elif training.payment == "exact":
        loo = VALUE_SOLVERS[regularizer](without, lam, loo_ref, ops)
    elif training.payment == "checkpoints":
        loo = regularised_welfare(iterates[..., None, :], without, lam, loo_ref, regularizer, ops)
        loo = ops.xp.maximum(ops.xp.amax(loo, axis=0), own_asw)  # theta_T is a checkpoint: p_i >= 0 exactly
    else:
        if training.payment == "same_solver":
            rerun = training.iterates(without, lam, loo_ref, regularizer, ops)[-1]
        else:
            rerun = mirror_ascent(without, lam, loo_ref, regularizer, training.payment_steps, training.step_size,
                                  ops)[-1]
        loo = regularised_welfare(rerun, without, lam, loo_ref, regularizer, ops)
    return policy, value, loo - own_asw, optimum - value
