"""Mixture-of-experts layer, its parameterization rules and its initial statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmech.models import GPT
from lmech.models.moe import MoEFeedForward
from lmech.param import MoERules, Parameterization
from lmech.param.rules import moe_factors


def _layer(E=8, k=2, D=16, M=24, seed=0):
    torch.manual_seed(seed)
    layer = MoEFeedForward(D, E, k, M)
    with torch.no_grad():
        layer.load_bias.normal_(0.0, 0.1)
    return layer


def _reference(layer: MoEFeedForward, h: torch.Tensor) -> torch.Tensor:
    """Token by token: top-k of sigmoid(r) + b, then (1/k) sum sigmoid(r_i) W_down gelu(W_up h)."""
    out = torch.zeros_like(h)
    for n in range(h.shape[0]):
        s = torch.sigmoid(layer.router @ h[n])
        chosen = sorted(range(layer.n_experts), key=lambda i: -float(s[i] + layer.load_bias[i]))[:layer.n_active]
        for i in chosen:
            out[n] += s[i] * (layer.down[i] @ F.gelu(layer.up[i] @ h[n])) / layer.n_active
    return out


def test_gate_math_matches_token_by_token_reference():
    layer = _layer().eval()
    h = torch.randn(3, 5, 16)
    with torch.no_grad():
        got = layer(h).reshape(-1, 16)
        ref = _reference(layer, h.reshape(-1, 16))
    assert torch.allclose(got, ref, atol=1e-5)


def test_gates_are_not_renormalised():
    # with one active expert the output is sigmoid(r_i) E_i(h), not E_i(h) (a renormalised gate is 1)
    layer = _layer(k=1).eval()
    h = torch.randn(20, 16)
    with torch.no_grad():
        g, mask = layer.route(h)
        chosen = mask.argmax(-1)
        expert = layer.experts(h)[torch.arange(20), chosen]
        y = layer(h)
    gate = g[torch.arange(20), chosen].unsqueeze(-1)
    assert torch.allclose(y, gate * expert, atol=1e-5)
    assert float((y - expert).abs().max()) > 0.1 * float(expert.abs().max())


def test_no_gradient_through_the_selection():
    layer = _layer(E=6, k=2).eval()
    with torch.no_grad():
        layer.load_bias.zero_()
        layer.load_bias[0] = -100.0  # expert 0 never chosen
    h = torch.randn(40, 16, dtype=torch.float64)
    layer = layer.double()
    v = torch.randn(40, 16, dtype=torch.float64)
    loss = (layer(h) * v).sum()
    loss.backward()
    # an expert that is never chosen gets no gradient at all (a softmax over all experts would)
    assert float(layer.router.grad[0].abs().max()) == 0.0
    assert float(layer.up.grad[0].abs().max()) == 0.0 and float(layer.down.grad[0].abs().max()) == 0.0
    # finite differences of the router: the selection is piecewise constant, so the autograd
    # gradient is the derivative through sigmoid(r_i) of the chosen experts alone
    eps = 1e-6
    for (i, d) in [(1, 3), (2, 7), (4, 0)]:
        with torch.no_grad():
            layer.router[i, d] += eps
            up = float((layer(h) * v).sum())
            layer.router[i, d] -= 2 * eps
            down = float((layer(h) * v).sum())
            layer.router[i, d] += eps
        assert (up - down) / (2 * eps) == pytest.approx(float(layer.router.grad[i, d]), rel=1e-5, abs=1e-8)


def test_load_bias_update_is_outside_the_optimizer():
    layer = _layer(E=8, k=2)
    assert "load_bias" not in dict(layer.named_parameters())
    h = torch.randn(64, 16)
    before = layer.load_bias.clone()
    layer.train()
    layer(h)
    load = layer.last_load
    assert float(load.sum()) == pytest.approx(2.0) and float(load.mean()) == pytest.approx(layer.kappa)
    assert torch.allclose(layer.load_bias, before - layer.load_bias_lr * (load - 0.25))
    after = layer.load_bias.clone()
    with torch.no_grad():
        layer(h)  # no gradient: no update
    layer.eval()
    layer(h)  # eval mode: no update
    assert torch.equal(layer.load_bias, after)
    # in a model: the bias is in no optimizer group and keeps balancing while the optimizer trains
    model = GPT(20, seq_len=8, width=16, depth=1, n_experts=4, n_active=1)
    p = Parameterization("completep", base_width=16)
    p.apply(model, generator=torch.Generator().manual_seed(0))
    names = {n for g in p.param_groups(model, lr=1e-3) for n in g["names"]}
    assert "blocks.0.moe.load_bias" not in names and "blocks.0.moe.router" in names


def test_roles_and_rule_table():
    model = GPT(30, seq_len=8, width=64, depth=4, n_experts=8, n_active=2, expert_width=128)
    p = Parameterization("completep", base_width=32, base_depth=2, moe=MoERules(base_expert_width=32))
    p.apply(model, generator=torch.Generator().manual_seed(0))
    layout = p.layout(model)
    kinds = {n.rsplit(".", 1)[1]: r.kind for n, r in layout.roles.items() if ".moe." in n}
    assert kinds == {"router": "router", "up": "expert_up", "down": "expert_down"}
    assert layout.moe_sites["blocks.0.moe"] == (8, 2, 128)
    f = p.factors(layout)
    r_D, r_M, r_L = 2.0, 4.0, 2.0  # the paper's table, depth eps 1/r_L, no depth factor in any LR
    router, up, down = (f[f"blocks.0.moe.{k}"] for k in ("router", "up", "down"))
    assert (router.std, router.lr, router.eps) == pytest.approx((1 / r_D, 1 / r_D / 16, 1 / (r_D * r_L)))
    assert (up.std, up.lr, up.eps) == pytest.approx((r_D**-0.5, 1 / r_D, 1 / (r_M * r_L)))
    assert (down.std, down.lr, down.eps) == pytest.approx((r_D**0.5 / r_M / 4, 1 / r_M / 16, r_D / r_M**2 / r_L))
    # initial stds: router sigma/sqrt(D_base) r_D^-1, down sqrt(D)/M / 4 (sigma = 1, D_base = M_base = 32)
    moe = model.blocks[0].moe
    assert float(moe.router.detach().std()) == pytest.approx(32**-0.5 / 2, rel=0.05)
    assert float(moe.up.detach().std()) == pytest.approx(64**-0.5, rel=0.05)
    assert float(moe.down.detach().std()) == pytest.approx(math.sqrt(64) / 128 / 4, rel=0.05)
    # fan-in control, SP (generic shapes) and SGD under muP (no rule)
    assert moe_factors("expert_down", "mup", "adam", 2.0, 4.0, down_init="fan_in").std == pytest.approx(0.5)
    assert moe_factors("router", "sp", "adam", 4.0, 4.0).std == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Adam only"):
        moe_factors("router", "mup", "sgd", 2.0, 2.0)
    assert Parameterization.from_state_dict(p.state_dict()) == p


def test_zero_router_with_zero_bias_is_refused():
    with pytest.raises(ValueError, match="router_init.*ties every gate"):
        MoERules(router_init=0.0)
    with pytest.raises(ValueError, match="ties every gate"):
        Parameterization("mup", base_width=16, moe={"router_init": 0.0, "load_bias_std": 0.0})
    p = Parameterization("mup", base_width=16, moe={"router_init": 0.0, "load_bias_std": 0.5})
    model = GPT(20, seq_len=8, width=16, depth=1, n_experts=4, n_active=1)
    p.apply(model, generator=torch.Generator().manual_seed(0))
    moe = model.blocks[0].moe
    assert float(moe.router.abs().max()) == 0.0 and float(moe.load_bias.std()) > 0.1


def test_init_output_variance_closed_form():
    """One layer's output variance per coordinate at init against (1/k) E[g^2] E[gelu(z)^2] M s_down^2,
    z ~ N(0, 1) (up init 1/sqrt(D) on unit-variance inputs); E[gelu^2] by quadrature."""
    D, M, E, k = 64, 256, 8, 2
    model = GPT(20, seq_len=8, width=D, depth=1, n_experts=E, n_active=k, expert_width=M)
    p = Parameterization("mup", base_width=32, moe=MoERules(base_expert_width=32))
    p.apply(model, generator=torch.Generator().manual_seed(1))
    moe = model.blocks[0].moe
    h = F.layer_norm(torch.randn(2000, D, generator=torch.Generator().manual_seed(2)), (D,))
    with torch.no_grad():
        out = moe(h)
        g, mask = moe.route(h)
    gate_sq = float((g**2 * mask).sum() / mask.sum())
    z = np.linspace(-10, 10, 20001)
    phi = 0.5 * z * (1 + torch.special.erf(torch.tensor(z / math.sqrt(2))).numpy())
    gelu2 = float(np.trapezoid(phi**2 * np.exp(-z**2 / 2) / math.sqrt(2 * math.pi), z))
    s_down = 32**-0.5 * math.sqrt(2.0) / (M / 32) / 4
    predicted = gate_sq * gelu2 * M * s_down**2 / k
    assert float(out.pow(2).mean()) == pytest.approx(predicted, rel=0.05)  # measured 1%


def test_init_stream_variance_slopes():
    from lmech.claims.toolkit import width_slope
    from lmech.sim.moe import init_stream, moe_param

    base = dict(width=32, depth=2, n_experts=8, n_active=2, expert_width=32)
    rule, fan_in = moe_param("completep", base), moe_param("completep", base, down_init="fan_in")
    Es, Ms = (4, 8, 16, 32), (32, 64, 128, 256)
    var_E = [init_stream(dict(base, n_experts=e, n_active=e // 4), rule, n_seeds=2, batch_size=2).stream_var
             for e in Es]
    var_M = {name: [init_stream(dict(base, expert_width=m), p, n_seeds=2, batch_size=2).stream_var for m in Ms]
             for name, p in (("rule", rule), ("fan_in", fan_in))}
    assert width_slope(Es, var_E) == pytest.approx(-1.0, abs=0.1)
    assert width_slope(Ms, var_M["rule"]) == pytest.approx(-1.0, abs=0.1)
    assert width_slope(Ms, var_M["fan_in"]) == pytest.approx(0.0, abs=0.1)


def test_bad_input_is_refused():
    from lmech.sim.hp_trial import TrialConfig
    from lmech.sim.moe import moe_coord_check, moe_gpt, moe_param

    base = dict(width=16, depth=1, n_experts=4, n_active=1, expert_width=16)
    with pytest.raises(TypeError, match="shape"):
        moe_gpt({"width": 16})
    with pytest.raises(ValueError, match="axis"):
        moe_coord_check("depth", (1, 2), base, moe_param("completep", base))
    with pytest.raises(ValueError, match="n_active"):
        GPT(20, width=16, n_experts=2, n_active=3)
    with pytest.raises(ValueError, match="n_experts"):
        TrialConfig(model="mlp", scheme="mup", width=64, depth=2, lr=1e-3, n_experts=4)
    with pytest.raises(ValueError, match="down_init"):
        MoERules(down_init="xavier")


def test_state_dict_round_trip_keeps_bias_sites_and_roles():
    p = Parameterization("completep", base_width=16, moe={"load_bias_std": 0.3, "load_bias_lr": 0.05})
    a = GPT(20, seq_len=8, width=32, depth=2, n_experts=4, n_active=2)
    p.apply(a, generator=torch.Generator().manual_seed(0))
    a.blocks[0].moe.combine_scale = 1.0
    b = GPT(20, seq_len=8, width=32, depth=2, n_experts=4, n_active=2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.blocks[1].moe.load_bias, a.blocks[1].moe.load_bias)
    assert b.blocks[0].moe.combine_scale == 1.0 and b.blocks[1].moe.load_bias_lr == 0.05
    assert p.layout(b).roles["blocks.1.moe.down"].kind == "expert_down"
