"""Every registered mechanism on torch tensors against the same mechanism on numpy arrays.

The numpy results are the reference (their maths is checked independently in
test_mechanisms_optimality/dsic/online); here: torch inputs give torch outputs of the same
device and dtype, equal to numpy's to 1e-10 in float64 (1e-4 in float32), for ``outcome``,
``unilateral_outcomes`` and the online rules' ``update`` over several rounds, in both
directions (tensor reports with numpy side inputs, numpy reports with tensor side inputs);
gradients flow through the differentiable rules and agree with the torch twin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms.differentiable import torch_outcome

SW = ("sw_max", "affine_maximizer")
CASES = [(name, {"regularizer": reg, "lam": lam}) for name in SW for reg in ("kl", "chi2", "tv") for lam in (0.05, 1.0)]
CASES += [(name, {}) for name in mechanisms.available() if name not in SW]


def test_every_registered_mechanism_is_covered():
    assert {name for name, _ in CASES} == set(mechanisms.available())


def _instance(seed, batch=(3,), n=4, K=5):
    rng = np.random.default_rng(seed)
    r = rng.dirichlet(np.ones(K), size=(*batch, n))
    alt = rng.dirichlet(np.ones(K), size=(*batch, n))
    w = rng.integers(1, 10, (*batch, n)).astype(float)
    alt_w = rng.integers(1, 10, (*batch, n)).astype(float)
    return r, alt, w, alt_w


def _close(t, a, tol):
    assert isinstance(t, torch.Tensor), type(t)
    np.testing.assert_allclose(t.detach().double().numpy(), a, atol=tol, rtol=0)


def _same(t_out, n_out, tol, dtype):
    for field in ("policy", "payments", "value", "weights"):
        a, t = getattr(n_out, field), getattr(t_out, field)
        assert (a is None) == (t is None), field
        if a is not None:
            assert t.dtype == dtype, (field, t.dtype)
            _close(t, a, tol)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_torch_outcomes_equal_numpy(name, params, dtype, tol, seed):
    r, alt, w, alt_w = _instance(seed, batch=[(), (3,), (2, 3)][seed % 3 + (1 if dtype == torch.float32 else 0)])
    T = lambda x: torch.tensor(x, dtype=dtype)  # noqa: E731
    m_np, m_t = mechanisms.make(name, **params), mechanisms.make(name, **params)
    _same(m_t.outcome(T(r), T(w)), m_np.outcome(r, w), tol, dtype)
    _same(m_t.unilateral_outcomes(T(r), T(w), T(alt), T(alt_w)), m_np.unilateral_outcomes(r, w, alt, alt_w), tol, dtype)
    if m_np.online:  # the weights learn the same way over rounds
        rng = np.random.default_rng(seed + 10)
        for _ in range(4):
            y = np.eye(r.shape[-1])[rng.integers(0, r.shape[-1], r.shape[:-2])]
            _close(m_t.update(T(r), T(y)), m_np.update(r, y), tol)
            _close(m_t.weights, m_np.weights, tol)
            _same(m_t.outcome(T(r)), m_np.outcome(r), tol, dtype)


@pytest.mark.parametrize("name,params", CASES[::3] + CASES[-4:], ids=str)
def test_mixed_inputs_follow_the_reports(name, params):
    """Tensor reports with numpy sizes/alternatives answer in torch; numpy reports with tensor
    side inputs answer in numpy (the twin in both directions)."""
    r, alt, w, alt_w = _instance(5)
    ref = mechanisms.make(name, **params)
    want = ref.unilateral_outcomes(r, w, alt, alt_w)
    got_t = mechanisms.make(name, **params).unilateral_outcomes(torch.tensor(r), w, alt, alt_w)
    _same(got_t, want, 1e-10, torch.float64)
    got_np = mechanisms.make(name, **params).unilateral_outcomes(r, torch.tensor(w), torch.tensor(alt), torch.tensor(alt_w))
    assert isinstance(got_np.policy, np.ndarray) and isinstance(got_np.payments, np.ndarray)
    np.testing.assert_allclose(got_np.policy, want.policy, atol=1e-12)
    np.testing.assert_allclose(got_np.payments, want.payments, atol=1e-12)


@pytest.mark.parametrize("name", SW)
@pytest.mark.parametrize("reg", ["kl", "chi2"])
def test_gradients_flow_through_outcome_and_match_the_twin(name, reg):
    r, alt, w, _ = _instance(3, batch=(2,))
    mech = mechanisms.make(name, regularizer=reg, lam=5.0)

    def grads(fn):
        x = torch.tensor(r, requires_grad=True)
        sizes = torch.tensor(w, requires_grad=True)
        out = fn(x, sizes)
        (out.policy * torch.arange(5.0, dtype=torch.float64)).sum().add(out.payments.sum()).backward()
        return x.grad, sizes.grad

    gx, gw = grads(lambda x, s: mech.outcome(x, s))
    tx, tw = grads(lambda x, s: torch_outcome(mech, x, s))
    assert torch.isfinite(gx).all() and gx.abs().max() > 0
    torch.testing.assert_close(gx, tx, atol=1e-12, rtol=0)
    torch.testing.assert_close(gw, tw, atol=1e-12, rtol=0)
    # the counterfactuals are differentiable too
    x = torch.tensor(alt, requires_grad=True)
    dev = mech.unilateral_outcomes(torch.tensor(r), torch.tensor(w), x)
    (dev.policy[..., 0].sum() + dev.payments.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_online_aggregate_is_differentiable():
    r, *_ = _instance(4)
    x = torch.tensor(r, requires_grad=True)
    mechanisms.make("online_weighted").outcome(x).policy[..., 0].sum().backward()
    torch.testing.assert_close(x.grad[..., 0], torch.full(r.shape[:-1], 1.0 / r.shape[-2], dtype=torch.float64))


@pytest.mark.parametrize("bad,match", [(float("nan"), "NaN or inf"), (1.5, r"lie in \[0, 1\], got min 0.25, max 1.5")])
def test_bad_tensor_reports_are_refused(bad, match):
    r = torch.full((3, 4), 0.25, dtype=torch.float64)
    r[1, 2] = bad
    with pytest.raises(ValueError, match=match):
        mechanisms.make("affine_maximizer").outcome(r)


def test_integer_tensors_become_float64():
    out = mechanisms.make("sw_max").outcome(torch.ones((2, 3), dtype=torch.int64))
    assert out.policy.dtype == torch.float64
    _close(out.policy, np.full(3, 1 / 3), 1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not exercised here")
@pytest.mark.parametrize("name,params", CASES[::2], ids=str)
def test_cuda_outcomes_stay_on_the_device(name, params):
    r, alt, w, alt_w = _instance(7)
    C = lambda x: torch.tensor(x, device="cuda")  # noqa: E731
    got = mechanisms.make(name, **params).unilateral_outcomes(C(r), C(w), C(alt), C(alt_w))
    want = mechanisms.make(name, **params).unilateral_outcomes(r, w, alt, alt_w)
    assert got.policy.device.type == "cuda" and got.payments.device.type == "cuda"
    np.testing.assert_allclose(got.policy.cpu().numpy(), want.policy, atol=1e-10)
    np.testing.assert_allclose(got.payments.cpu().numpy(), want.payments, atol=1e-10)
