"""Tests of lmech.param: rules, roles, groups, equivalence of forms, survivability, errors."""
from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lmech.models import GPT, MLP, ResMLP
from lmech.param import Parameterization, ScaledLinear
from lmech.param.rules import SCHEMES, Factors, fold_multiplier, width_factors


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

SCHEME_LIST = list(SCHEMES)


def _mlp(width, depth=4):
    return MLP(12, 5, width=width, depth=depth)


def _resmlp(width, depth=2):
    return ResMLP(12, 5, width=width, depth=depth, bias=True)


def _gpt(width, depth=2, tie=False):
    return GPT(30, seq_len=8, width=width, depth=depth, head_dim=8, tie_weights=tie)


def _inputs(model):
    g = torch.Generator().manual_seed(5)
    if isinstance(model, GPT):
        return torch.randint(0, 30, (3, 8), generator=g)
    return torch.randn(7, 12, generator=g)


def _apply(scheme, model, optimizer="adam", seed=0, **kw):
    p = Parameterization(scheme, base_width=kw.pop("base_width", 16), base_depth=kw.pop("base_depth", 2),
                         optimizer=optimizer, **kw)
    p.apply(model, generator=torch.Generator().manual_seed(seed))
    return p


def _group_signature(groups):
    return [(g["lr"], g.get("eps"), g["weight_decay"], tuple(g["names"])) for g in groups]


# --------------------------------------------------------------------------- base shape = SP
@pytest.mark.parametrize("make", [_mlp, _resmlp, _gpt, lambda w: _gpt(w, tie=True)], ids=["mlp", "resmlp", "gpt", "gpt_tied"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_every_scheme_equals_sp_at_base_shape(make, optimizer):
    ref = make(16)
    p_sp = _apply("sp", ref, optimizer)
    x = _inputs(ref)
    ref_out = ref(x)
    ref_groups = _group_signature(p_sp.param_groups(ref, lr=1e-3, weight_decay=0.1, eps=1e-6))
    for scheme in SCHEME_LIST[1:]:
        m = make(16)
        p = _apply(scheme, m, optimizer)
        for (n1, a), (n2, b) in zip(ref.named_parameters(), m.named_parameters()):
            assert n1 == n2 and torch.equal(a, b), (scheme, n1)
        assert torch.equal(m(x), ref_out), scheme
        assert _group_signature(p.param_groups(m, lr=1e-3, weight_decay=0.1, eps=1e-6)) == ref_groups, scheme


# --------------------------------------------------------------------------- group formulas (hand-written)
ETA, EPS, LAM = 2e-3, 1e-6, 0.1


def _expected_adam(scheme, kind, in_block, m, m_L):
    """Spec tables 1.2 and 1.5 (Adam), written out independently of lmech.param.rules."""
    alpha = {"depth_mup": 0.5, "completep": 1.0}.get(scheme)
    if scheme == "sp":
        lr, eps, wd = ETA, EPS, LAM
    elif scheme == "ntp":
        if kind == "hidden":
            lr, eps, wd = ETA / m, EPS / m, LAM * m
        elif kind == "scalar":
            lr, eps, wd = ETA, EPS, LAM
        else:
            lr, eps, wd = ETA / math.sqrt(m), EPS / math.sqrt(m), LAM * math.sqrt(m)
    else:
        if kind == "hidden":
            lr, eps, wd = ETA / m, EPS / m, LAM * m
        elif kind == "scalar":
            lr, eps, wd = ETA, EPS, LAM
        else:
            lr, eps, wd = ETA, EPS / m, LAM
        if alpha is not None and in_block:
            lr *= m_L ** (alpha - 1)
            eps *= m_L**-alpha
    return lr, eps, wd


def _expected_sgd(scheme, kind, in_block, m, m_L):
    alpha = {"depth_mup": 0.5, "completep": 1.0}.get(scheme)
    if scheme in ("sp", "ntp") or kind == "scalar":
        lr = ETA
    elif kind == "hidden":
        lr = ETA  # m_out / m_in = 1 for square growth
    else:  # input, readout (Table 8 form), bias, gain
        lr = ETA * m
    wd = LAM * ETA / lr
    if alpha is not None and in_block:
        lr *= m_L ** (2 * alpha - 1)
    return lr, None, wd


# expected role of every ResMLP parameter (hand-written)
_RESMLP_ROLES = {
    "embed.weight": ("input", False), "embed.bias": ("bias", False),
    "norm.weight": ("gain", False), "norm.bias": ("gain", False),
    "readout.weight": ("readout", False), "readout.bias": ("scalar", False),
}
for _b in range(4):
    _RESMLP_ROLES.update({
        f"blocks.{_b}.norm.weight": ("gain", True), f"blocks.{_b}.norm.bias": ("gain", True),
        f"blocks.{_b}.fc1.weight": ("hidden", True), f"blocks.{_b}.fc1.bias": ("bias", True),
        f"blocks.{_b}.fc2.weight": ("hidden", True), f"blocks.{_b}.fc2.bias": ("bias", True),
    })


@pytest.mark.parametrize("scheme", SCHEME_LIST)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_group_formulas_per_role(scheme, optimizer):
    width, depth, m, m_L = 64, 4, 4.0, 2.0
    model = _resmlp(width, depth)
    p = _apply(scheme, model, optimizer)
    layout = p.layout(model)
    assert {n: (r.kind, r.in_block) for n, r in layout.roles.items()} == _RESMLP_ROLES
    groups = p.param_groups(model, lr=ETA, weight_decay=LAM, eps=EPS, no_decay=())
    seen = set()
    expect_fn = _expected_adam if optimizer == "adam" else _expected_sgd
    for g in groups:
        for name in g["names"]:
            kind, in_block = _RESMLP_ROLES[name]
            lr, eps, wd = expect_fn(scheme, kind, in_block, m, m_L)
            assert g["lr"] == pytest.approx(lr, rel=1e-12), (name, g["lr"], lr)
            assert g["weight_decay"] == pytest.approx(wd, rel=1e-12), (name, g["weight_decay"], wd)
            if optimizer == "adam":
                assert g["eps"] == pytest.approx(eps, rel=1e-12), (name, g["eps"], eps)
            else:
                assert "eps" not in g
            assert g["lr_scale"] == pytest.approx(g["lr"] / ETA)
            seen.add(name)
    assert seen == set(_RESMLP_ROLES)
    # one group per distinct (lr, eps, wd) triple
    keys = [(g["lr"], g.get("eps"), g["weight_decay"]) for g in groups]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("scheme", SCHEME_LIST)
def test_init_std_and_multipliers(scheme):
    """Measured init std and forward multipliers against the tables (width 256, base 16)."""
    model = _resmlp(256, 2)
    _apply(scheme, model)
    m = 16.0
    std = lambda t: t.detach().std().item()  # noqa: E731
    hidden = std(model.blocks[0].fc1.weight)
    readout = std(model.readout.weight)
    base_std = 1 / math.sqrt(16)
    if scheme == "ntp":
        assert hidden == pytest.approx(base_std, rel=0.03)
        assert model.blocks[0].fc1.input_multiplier == pytest.approx(m**-0.5)
        assert readout == pytest.approx(base_std, rel=0.1)
        assert model.readout.input_multiplier == pytest.approx(m**-0.5)
    else:
        assert hidden == pytest.approx(1 / math.sqrt(256), rel=0.03)
        assert model.blocks[0].fc1.input_multiplier == 1.0
        if scheme == "sp":
            assert readout == pytest.approx(1 / math.sqrt(256), rel=0.1)
            assert model.readout.input_multiplier == 1.0
        else:
            assert readout == pytest.approx(base_std, rel=0.1)
            assert model.readout.input_multiplier == pytest.approx(1 / m)
    assert std(model.embed.weight) == pytest.approx(1 / math.sqrt(12), rel=0.05)
    assert torch.all(model.blocks[0].norm.weight == 1) and torch.all(model.blocks[0].fc1.bias == 0)


@pytest.mark.parametrize("scheme,expected", [("sp", 1.0), ("mup", 1.0), ("depth_mup", 0.5), ("completep", 0.25)])
def test_branch_multiplier(scheme, expected):
    model = _resmlp(32, 8)
    p = _apply(scheme, model)
    assert all(b.branch_multiplier == pytest.approx(expected) for b in model.blocks)
    assert p.branch_multiplier(8) == pytest.approx(expected)


def test_alpha_override_and_wd_modes():
    model = _resmlp(64, 8)
    p = _apply("completep", model, alpha=0.75)
    assert model.blocks[0].branch_multiplier == pytest.approx(4**-0.75)
    g = {n: grp for grp in p.param_groups(model, lr=1.0, weight_decay=0.5) for n in grp["names"]}
    assert g["blocks.0.fc1.weight"]["lr"] == pytest.approx(4**-1 * 4 ** (0.75 - 1))
    # coupled: hidden lr*wd is width-independent but carries the depth LR factor (CompleteP Table 1)
    assert g["blocks.0.fc1.weight"]["lr"] * g["blocks.0.fc1.weight"]["weight_decay"] == pytest.approx(0.5 * 4**-0.25)
    p2 = Parameterization("completep", base_width=16, base_depth=2, alpha=0.75, wd_depth_compensation=True)
    m2 = _resmlp(64, 8)
    p2.apply(m2)
    g2 = {n: grp for grp in p2.param_groups(m2, lr=1.0, weight_decay=0.5) for n in grp["names"]}
    assert g2["blocks.0.fc1.weight"]["lr"] * g2["blocks.0.fc1.weight"]["weight_decay"] == pytest.approx(0.5)
    p3 = Parameterization("mup", base_width=16, base_depth=2, wd_mode="independent")
    m3 = _mlp(64)
    p3.apply(m3)
    for grp in p3.param_groups(m3, lr=0.01, weight_decay=1e-4):
        if grp["weight_decay"]:
            assert grp["lr"] * grp["weight_decay"] == pytest.approx(1e-4)


def test_attention_scale():
    # fixed head_dim: 1/sqrt(head_dim) in every scheme
    for scheme in SCHEME_LIST:
        m = _gpt(64)
        _apply(scheme, m)
        assert m.blocks[0].attn.attn_scale == pytest.approx(8**-0.5)
    # fixed number of heads: head_dim grows with width; muP uses base_hd^-1/2 * (hd/base_hd)^-1
    for scheme, expected in [("sp", 32**-0.5), ("mup", 8**-0.5 / 4), ("completep", 8**-0.5 / 4)]:
        m = GPT(30, seq_len=8, width=64, depth=2, n_heads=2)
        p = Parameterization(scheme, base_width=16, base_depth=2)
        p.apply(m)
        assert m.blocks[1].attn.attn_scale == pytest.approx(expected)
        assert p.attention_scale(32, 8) == pytest.approx(expected)


# --------------------------------------------------------------------------- multiplier form = init/LR form
def _plain_mlp(width):
    return nn.Sequential(nn.Linear(12, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 5))


def _trajectory(model, p, optimizer, steps=20, eps=1e-3, wd=0.05):
    groups = p.param_groups(model, lr=3e-3 if optimizer == "adam" else 0.05, weight_decay=wd, eps=eps)
    opt = torch.optim.AdamW(groups) if optimizer == "adam" else torch.optim.SGD(groups, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 12, generator=g), torch.randint(0, 5, (32,), generator=g)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.tensor(losses, dtype=torch.float64)


@pytest.mark.parametrize("scheme", ["mup", "ntp", "sp"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_multiplier_form_equals_folded_form(scheme, optimizer):
    """A model with forward multipliers and its plain nn.Sequential equivalent (multipliers
    folded into init, LR, eps and wd) follow the same loss trajectory (Adam eps and weight
    decay chosen large enough to matter)."""
    width = 128
    sited = _mlp(width)
    plain = _plain_mlp(width)
    p = _apply(scheme, sited, optimizer)
    p_plain = _apply(scheme, plain, optimizer)
    assert p_plain.layout(plain).method == "chain"
    assert [r.kind for r in p_plain.layout(plain).roles.values()] == [r.kind for r in p.layout(sited).roles.values()]
    a = _trajectory(sited, p, optimizer)
    b = _trajectory(plain, p_plain, optimizer)
    assert a[-1] < a[0]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_folding_without_eps_transform_would_differ():
    """Negative control for the test above: Adam without the eps transform is a different
    trajectory, so the equivalence test can fail."""
    width = 128
    sited, plain = _mlp(width), _plain_mlp(width)
    p = _apply("mup", sited)
    p_plain = _apply("mup", plain)
    a = _trajectory(sited, p, "adam", eps=1e-2, wd=0.0)
    groups = p_plain.param_groups(plain, lr=3e-3, eps=1e-2)
    for g in groups:
        g["eps"] = 1e-2 * (g["eps"] / 1e-2 if "readout" not in g["roles"] else 1 / 4)  # undo the readout eps fold
    opt = torch.optim.AdamW(groups)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 12, generator=gen), torch.randint(0, 5, (32,), generator=gen)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(plain(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (torch.tensor(losses, dtype=torch.float64) - a).abs().max() > 1e-3


def test_fold_multiplier_invariants():
    f = Factors(std=0.5, multiplier=0.25, lr=2.0, eps=0.1, wd=3.0)
    fa = fold_multiplier(f, "adam")
    assert fa.multiplier == 1.0
    assert fa.std == pytest.approx(f.std * f.multiplier)
    assert fa.lr == pytest.approx(f.lr * f.multiplier)
    assert fa.eps / fa.multiplier == pytest.approx(f.eps / f.multiplier)
    assert fa.lr * fa.wd == pytest.approx(f.lr * f.wd)
    fs = fold_multiplier(f, "sgd")
    assert fs.lr == pytest.approx(f.lr * f.multiplier**2)
    assert fs.lr * fs.wd == pytest.approx(f.lr * f.wd)


# --------------------------------------------------------------------------- survivability
def _groups_equal(g1, g2):
    assert _group_signature(g1) == _group_signature(g2)


@pytest.mark.parametrize("make", [_resmlp, lambda w: _gpt(w, tie=True)], ids=["resmlp", "gpt_tied"])
def test_deepcopy_pickle_state_dict(make):
    model = make(64)
    p = _apply("completep", model, base_depth=1)
    x = _inputs(model)
    out = model(x)
    groups = p.param_groups(model, lr=1e-3, weight_decay=0.1)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(clone(x), out, rtol=0, atol=0)
        _groups_equal(p.param_groups(clone, lr=1e-3, weight_decay=0.1), groups)
        assert [b.branch_multiplier for b in clone.blocks] == [b.branch_multiplier for b in model.blocks]
    # state_dict -> torch.save -> fresh model -> load_state_dict: multipliers and roles restored
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make(64)
    fresh.load_state_dict(torch.load(buf))
    torch.testing.assert_close(fresh(x), out, rtol=0, atol=0)
    _groups_equal(p.param_groups(fresh, lr=1e-3, weight_decay=0.1), groups)


def test_plain_model_state_dict_round_trip_with_attach():
    plain = _plain_mlp(64)
    p = _apply("mup", plain)
    x = torch.randn(4, 12)
    out = plain(x)
    groups = p.param_groups(plain, lr=1e-3)
    fresh = _plain_mlp(64)
    fresh.load_state_dict(plain.state_dict())
    before = [t.clone() for t in fresh.parameters()]
    p.attach(fresh)
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.parameters()))  # attach never touches weights
    torch.testing.assert_close(fresh(x), out, rtol=0, atol=0)
    _groups_equal(p.param_groups(fresh, lr=1e-3), groups)


def test_apply_is_idempotent_and_reinit_resamples():
    model = _mlp(64)
    p = _apply("mup", model)
    w = model.layers[1].weight.clone()
    p.apply(model)
    assert torch.equal(model.layers[1].weight, w)
    p.apply(model, reinit=True)
    assert not torch.equal(model.layers[1].weight, w)
    other = Parameterization("sp", base_width=16, base_depth=2)
    with pytest.raises(ValueError, match="initialised by"):
        other.param_groups(model, lr=1e-3)


def test_torch_compile_fullgraph_matches_eager():
    model = _resmlp(64, 4)
    p = _apply("completep", model)
    x = _inputs(model)
    eager = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), eager, rtol=1e-6, atol=1e-6)
    groups = p.param_groups(compiled, lr=1e-3, weight_decay=0.1)
    _groups_equal(groups, p.param_groups(model, lr=1e-3, weight_decay=0.1))
    opt = torch.optim.AdamW(groups)
    for _ in range(2):
        loss = compiled(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)


@pytest.mark.slow
def test_torch_compile_inductor_fullgraph():
    model = _gpt(64)
    p = _apply("mup", model)
    x = _inputs(model)
    eager = model(x)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), eager, rtol=1e-5, atol=1e-5)
    opt = torch.optim.AdamW(p.param_groups(compiled, lr=1e-3))
    loss = compiled(x).square().mean()
    loss.backward()
    opt.step()


def test_tied_weights():
    model = _gpt(64, tie=True)
    p = _apply("mup", model)
    layout = p.layout(model)
    assert "lm_head.weight" not in layout.roles
    role = layout.roles["wte.weight"]
    assert role.kind == "input" and role.tied and role.readout_site == "lm_head"
    assert model.lm_head.input_multiplier == pytest.approx(1 / 4)
    names = [n for g in p.param_groups(model, lr=1e-3) for n in g["names"]]
    assert names.count("wte.weight") == 1 and len(names) == len(set(names))
    # a tied readout without a multiplier site cannot carry muP's 1/m
    emb = nn.Embedding(10, 64)
    head = nn.Linear(64, 10, bias=False)
    head.weight = emb.weight
    plain = nn.ModuleDict({"emb": emb, "mid": nn.Linear(64, 64), "head": head})
    with pytest.raises(ValueError, match="tied weight"):
        Parameterization("mup", base_width=16).apply(plain)
    Parameterization("sp", base_width=16).apply(plain)


def test_role_overrides_and_unassigned():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(4, 32)
            self.scale = nn.Parameter(torch.ones(32))
            self.temp = nn.Parameter(torch.tensor(1.0))
            self.out = nn.Linear(32, 3)

        def forward(self, x):
            return self.out(self.inp(x) * self.scale) * self.temp

    p = Parameterization("mup", base_width=8)
    with pytest.raises(ValueError, match=r"scale .*temp|no role.*scale"):
        p.apply(Custom())
    model = Custom()
    p.apply(model, roles={"scale": "gain", "temp": "scalar"})
    kinds = {n: r.kind for n, r in p.layout(model).roles.items()}
    assert kinds == {"inp.weight": "input", "inp.bias": "bias", "scale": "gain", "temp": "scalar",
                     "out.weight": "readout", "out.bias": "scalar"}
    assert torch.all(model.scale == 1)  # unknown tensors keep their values
    # forcing a role on a standard layer
    m2 = _plain_mlp(32)
    p.apply(m2, roles={"4.weight": "input"})
    assert p.layout(m2).roles["4.weight"].kind == "input"


def test_base_model_probe_for_plain_models():
    plain = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 3))
    base = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3))
    p = Parameterization("mup", base_width=16)
    layout = p.layout(plain, base_model=base)
    assert layout.method == "probe" and layout.m == 4
    assert [r.kind for r in layout.roles.values()] == ["input", "bias", "hidden", "bias", "readout", "scalar"]
    bad = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match="scale like the width|ratio"):
        p.layout(plain, base_model=bad)


def test_depth_scheme_needs_branch_sites():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 32)

        def forward(self, x):
            return x + self.fc(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(4, 32)
            self.blocks = nn.ModuleList([Block() for _ in range(4)])
            self.out = nn.Linear(32, 2)

    p = Parameterization("completep", base_width=8, base_depth=2)
    with pytest.raises(ValueError, match="branch_multiplier"):
        p.apply(Net(), blocks="blocks")
    Parameterization("mup", base_width=8, base_depth=2).apply(Net(), blocks="blocks")


# --------------------------------------------------------------------------- bad input
def test_bad_inputs():
    with pytest.raises(ValueError, match="`scheme`"):
        Parameterization("mu_p", base_width=64)
    with pytest.raises(ValueError, match="`base_width`"):
        Parameterization("mup", base_width=0)
    with pytest.raises(ValueError, match="`base_depth`"):
        Parameterization("mup", base_width=8, base_depth=-1)
    with pytest.raises(TypeError, match="`base_width`"):
        Parameterization("mup", base_width="64")
    with pytest.raises(ValueError, match="`optimizer`"):
        Parameterization("mup", base_width=8, optimizer="lion")
    with pytest.raises(ValueError, match="`alpha`"):
        Parameterization("mup", base_width=8, alpha=0.5)
    with pytest.raises(ValueError, match="`wd_mode`"):
        Parameterization("mup", base_width=8, wd_mode="decoupled")
    with pytest.raises(ValueError, match="`base_width`.*width 32"):
        Parameterization("mup", base_width=64).apply(_mlp(32))
    with pytest.raises(ValueError, match="`base_depth`"):
        Parameterization("completep", base_width=16, base_depth=8).apply(_resmlp(32, 4))
    p = _apply("mup", _mlp(32))
    with pytest.raises(ValueError, match="`lr`"):
        p.param_groups(_mlp(32), lr=0.0)
    with pytest.raises(ValueError, match="`weight_decay`"):
        p.param_groups(_mlp(32), lr=1e-3, weight_decay=-1.0)
    with pytest.raises(ValueError, match="`no_decay`"):
        p.param_groups(_mlp(32), lr=1e-3, no_decay=("biases",))
    with pytest.raises(ValueError, match="roles"):
        p.apply(_mlp(32), roles={"*": "hiden"})
    with pytest.raises(ValueError, match="`width`"):
        MLP(4, 2, width=0)
    with pytest.raises(ValueError, match="`depth`"):
        ResMLP(4, 2, width=8, depth=0)


def test_state_dict_of_parameterization_round_trips():
    p = Parameterization("completep", base_width=32, base_depth=4, optimizer="sgd", alpha=0.8, zero_readout=True)
    assert Parameterization.from_state_dict(p.state_dict()) == p
    assert pickle.loads(pickle.dumps(p)) == p
    import json

    json.dumps(p.state_dict())


def test_table_mentions_every_parameter():
    model = _resmlp(64)
    p = _apply("depth_mup", model)
    text = p.table(model)
    for name, _ in model.named_parameters():
        assert name in text


# --------------------------------------------------------------------------- fuzz
@settings(max_examples=30, deadline=None)
@given(
    scheme=st.sampled_from(SCHEME_LIST),
    optimizer=st.sampled_from(["adam", "sgd"]),
    base=st.sampled_from([4, 8, 16]),
    mult=st.sampled_from([1, 2, 3, 8]),
    base_depth=st.integers(1, 3),
    extra_depth=st.integers(0, 3),
)
def test_fuzz_groups_cover_every_parameter_once(scheme, optimizer, base, mult, base_depth, extra_depth):
    width, depth = base * mult, base_depth + extra_depth
    model = ResMLP(3, 2, width=width, depth=depth, bias=True)
    p = Parameterization(scheme, base_width=base, base_depth=base_depth, optimizer=optimizer)
    p.apply(model, generator=torch.Generator().manual_seed(0))
    groups = p.param_groups(model, lr=0.01, weight_decay=0.1, no_decay=())
    ids = [id(t) for g in groups for t in g["params"]]
    assert sorted(ids) == sorted(id(t) for t in model.parameters())
    layout = p.layout(model)
    alpha = p.depth_exponent
    for g in groups:
        assert math.isfinite(g["lr"]) and g["lr"] > 0
        for name in g["names"]:
            role = layout.roles[name]
            # coupled decay: lr * wd never depends on width (and on depth only via the Adam/SGD depth LR factor)
            depth_lr = 1.0
            if role.in_block and alpha is not None:
                depth_lr = (depth / base_depth) ** ((alpha - 1) if optimizer == "adam" else (2 * alpha - 1))
            assert g["lr"] * g["weight_decay"] == pytest.approx(0.01 * 0.1 * depth_lr, rel=1e-9)
    out = model(torch.randn(2, 3))
    assert torch.all(torch.isfinite(out))


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["input", "hidden", "readout", "bias", "gain", "scalar"]),
       scheme=st.sampled_from(SCHEME_LIST), optimizer=st.sampled_from(["adam", "sgd"]),
       m=st.floats(1.0, 64.0))
def test_fuzz_width_factors(kind, scheme, optimizer, m):
    f = width_factors(kind, scheme, optimizer, m, m, m)
    assert all(math.isfinite(v) and v > 0 for v in (f.std, f.multiplier, f.lr, f.eps, f.wd))
    assert f.lr * f.wd == pytest.approx(1.0)
    one = width_factors(kind, scheme, optimizer, 1.0, 1.0, 1.0)
    assert one == Factors()
    # the effective initial weight scale std * multiplier of hidden/readout tensors
    if kind == "hidden":
        assert f.std * f.multiplier == pytest.approx(m**-0.5)
    if kind == "readout":
        expected = m**-1 if scheme in ("mup", "depth_mup", "completep") else m**-0.5
        assert f.std * f.multiplier == pytest.approx(expected)


def test_meta_device_init_then_to_empty():
    direct = _resmlp(64, 4)
    p = _apply("completep", direct, seed=3)
    with torch.device("meta"):
        model = _resmlp(64, 4)
    p.apply(model)  # describes only: nothing to initialise on the meta device
    model.to_empty(device="cpu")
    p.apply(model, generator=torch.Generator().manual_seed(3))
    for (n, a), (_, b) in zip(direct.named_parameters(), model.named_parameters()):
        assert torch.equal(a, b), n
    assert [blk.branch_multiplier for blk in model.blocks] == [0.5] * 4


def test_to_dtype_keeps_multipliers_and_groups():
    model = _gpt(64)
    p = _apply("mup", model)
    groups = p.param_groups(model, lr=1e-3)
    model = model.to(torch.float64)
    assert model.lm_head.input_multiplier == pytest.approx(1 / 4)
    _groups_equal(p.param_groups(model, lr=1e-3), groups)
    assert model(_inputs(model)).dtype == torch.float64


def test_ddp_wrapped_model_groups(tmp_path):
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = _resmlp(64, 4)
        p = _apply("depth_mup", model)
        before = p.param_groups(model, lr=1e-3, weight_decay=0.1)
        ddp = nn.parallel.DistributedDataParallel(model)
        after = p.param_groups(ddp, lr=1e-3, weight_decay=0.1)
        _groups_equal(before, after)
        assert [id(t) for g in before for t in g["params"]] == [id(t) for g in after for t in g["params"]]
    finally:
        dist.destroy_process_group()


def test_wrapper_prefixes_are_stripped():
    from lmech.param.roles import clean_name

    assert clean_name("_orig_mod.blocks.0._fsdp_wrapped_module.fc1.weight") == "blocks.0.fc1.weight"


def test_groups_for_another_optimizer_from_the_same_init():
    model = _mlp(64)
    _apply("mup", model, optimizer="adam")
    sgd = Parameterization("mup", base_width=16, base_depth=2, optimizer="sgd")
    w = model.layers[1].weight.clone()
    sgd.apply(model)  # same init: no-op
    assert torch.equal(model.layers[1].weight, w)
    lrs = {n: g["lr"] for g in sgd.param_groups(model, lr=0.1) for n in g["names"]}
    assert lrs["layers.0.weight"] == pytest.approx(0.4) and lrs["layers.1.weight"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="initialised by"):
        Parameterization("mup", base_width=32, base_depth=2).param_groups(model, lr=0.1)


def test_probe_failure_is_explained():
    with pytest.raises(ValueError, match="cannot build GPT at width 8"):
        Parameterization("mup", base_width=8).apply(GPT(30, width=64, head_dim=16))


def test_scaled_linear_site():
    torch.manual_seed(0)
    lin = ScaledLinear(6, 4)
    ref = nn.Linear(6, 4)
    ref.load_state_dict({k: v for k, v in lin.state_dict().items() if k != "_extra_state"})
    x = torch.randn(3, 6)
    assert torch.equal(lin(x), ref(x))  # multiplier 1: bit-identical to nn.Linear
    lin.input_multiplier = 0.5
    torch.testing.assert_close(lin(x), ref(0.5 * x))
    fresh = ScaledLinear(6, 4)
    fresh.load_state_dict(lin.state_dict())
    assert fresh.input_multiplier == 0.5
