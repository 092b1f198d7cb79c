"""Torch twin (``mechanisms.differentiable.torch_outcome``) against the numpy mechanisms.

* same policy / payments / value as numpy to 1e-6 (float64; in practice much tighter) for
  kl, chi2, tv under sw_max and affine_maximizer, with batched shapes;
* gradients w.r.t. reports (and sizes) exist and are finite; for kl and chi2 they match
  finite differences (``torch.autograd.gradcheck`` in float64) at generic points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms.differentiable import torch_outcome

REGS = ["kl", "chi2", "tv"]
NAMES = ["sw_max", "affine_maximizer"]


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, derandomize=True, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), K=st.integers(2, 6),
       batch=st.sampled_from([(), (3,), (2, 3)]), lam=st.sampled_from([1e-3, 0.1, 1.0, 10.0]),
       ref_kind=st.sampled_from(["none", "constructor", "call"]), sizes=st.booleans())
def test_torch_matches_numpy(reg, name, seed, n, K, batch, lam, ref_kind, sizes):
    rng = np.random.default_rng(seed)
    r = rng.uniform(0, 1, (*batch, n, K))
    w = rng.integers(1, 20, (*batch, n)).astype(float) if sizes else None
    ref = rng.dirichlet(np.full(K, 2.0))
    mech = mechanisms.make(name, lam=lam, regularizer=reg, reference=ref if ref_kind == "constructor" else None)
    call_ref = ref if ref_kind == "call" else None
    out = mech.outcome(r, w, reference=call_ref)
    t = torch_outcome(mech, torch.tensor(r), None if w is None else torch.tensor(w), reference=call_ref)
    assert t.policy.dtype == torch.float64
    assert tuple(t.policy.shape) == out.policy.shape == (*batch, K)
    assert tuple(t.payments.shape) == out.payments.shape == (*batch, n)
    np.testing.assert_allclose(t.policy.numpy(), out.policy, atol=1e-6, rtol=0)
    np.testing.assert_allclose(t.payments.numpy(), out.payments, atol=1e-6, rtol=1e-9)
    np.testing.assert_allclose(t.value.numpy(), out.value, atol=1e-6, rtol=1e-12)


@pytest.mark.parametrize("reg", ["kl", "chi2"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradcheck_smooth_regularisers(reg, name, seed):
    rng = np.random.default_rng(seed)
    n, K = 3, 4
    # chi2 needs a full-support generic point away from the thresholding kinks: big lam
    lam = 0.7 if reg == "kl" else 5.0
    mech = mechanisms.make(name, lam=lam, regularizer=reg)
    r = torch.tensor(rng.uniform(0.1, 0.9, (2, n, K)), requires_grad=True)
    w = torch.tensor(rng.uniform(1, 3, (2, n)), requires_grad=True)

    def f(r, w):
        o = torch_outcome(mech, r, w)
        return o.policy, o.payments, o.value

    assert torch.autograd.gradcheck(f, (r, w), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("reg", ["kl", "chi2"])
def test_gradient_of_utility_matches_central_differences(reg):
    """Gradient of u_i = w_i <theta, r_i> - p_i w.r.t. i's report, checked by hand (np.float64)."""
    rng = np.random.default_rng(3)
    n, K = 3, 5
    lam = 0.5 if reg == "kl" else 8.0
    mech = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg)
    r_true = rng.uniform(0.2, 0.8, (n, K))
    w = rng.integers(1, 5, n).astype(float)
    rep = r_true.copy()
    rep[0] = rng.uniform(0.2, 0.8, K)

    def u_np(rep):
        out = mech.outcome(rep, w)
        return w[0] * out.policy @ r_true[0] - out.payments[0]

    x = torch.tensor(rep, requires_grad=True)
    o = torch_outcome(mech, x, torch.tensor(w))
    u = w[0] * (o.policy * torch.tensor(r_true[0])).sum() - o.payments[0]
    u.backward()
    g = x.grad.numpy()
    h = 1e-6
    for k in range(K):
        e = np.zeros((n, K))
        e[0, k] = h
        fd = (u_np(rep + e) - u_np(rep - e)) / (2 * h)
        assert abs(g[0, k] - fd) <= 1e-6 * (1 + abs(fd))
    # at the truthful report the gradient vanishes (DSIC: truthful is a stationary maximiser)
    x = torch.tensor(r_true, requires_grad=True)
    o = torch_outcome(mech, x, torch.tensor(w))
    u = w[0] * (o.policy * torch.tensor(r_true[0])).sum() - o.payments[0]
    u.backward()
    assert np.abs(x.grad.numpy()[0]).max() <= 1e-9


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lam", [1e-6, 1e-2, 1.0])
def test_gradients_exist_and_are_finite(reg, name, lam):
    rng = np.random.default_rng(11)
    mech = mechanisms.make(name, lam=lam, regularizer=reg)
    r = torch.tensor(rng.uniform(0, 1, (4, 3, 5)), requires_grad=True)
    w = torch.tensor(rng.uniform(1, 1e4, (4, 3)), requires_grad=True)
    o = torch_outcome(mech, r, w)
    loss = (o.policy * torch.arange(5.0, dtype=torch.float64)).sum() + o.payments.sum() + o.value.sum()
    loss.backward()
    assert r.grad is not None and w.grad is not None
    assert torch.isfinite(r.grad).all() and torch.isfinite(w.grad).all()
    assert torch.isfinite(o.policy).all() and torch.isfinite(o.payments).all()
