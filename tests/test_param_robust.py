"""Robustness of lmech.param on users' models: late parameters, out-of-order modules, frozen
tensors, stock attention, optimizer mismatch, coordinate check with role overrides."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmech.param import HeadDimWarning, Parameterization, check_optimizer


def _seq(width: int, d_in: int = 20, d_out: int = 5) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, d_out))


# ---------------------------------------------------------------- 1. late parameters
def test_parameters_added_after_apply_are_refused_by_name():
    p = Parameterization("mup", base_width=16)
    model = _seq(64)
    p.apply(model)
    assert sum(len(g["params"]) for g in p.param_groups(model, lr=1e-3)) == 6
    model.extra = nn.LayerNorm(64)
    model.scale = nn.Parameter(torch.ones(()))
    with pytest.raises(ValueError, match=r"added after apply.*'scale', 'extra\.weight', 'extra\.bias'"):
        p.param_groups(model, lr=1e-3)
    p.attach(model, roles={"scale": "scalar"})  # re-recording the roles makes the groups complete again
    groups = p.param_groups(model, lr=1e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters())) == 9


# ---------------------------------------------------------------- 2. out-of-order registration
class _OutOfOrder(nn.Module):
    """Head registered first, the square hidden layer last: the chain rule reads them wrongly."""

    def __init__(self, width: int, d_in: int = 784, d_out: int = 10) -> None:
        super().__init__()
        self.head = nn.Linear(width, d_out)
        self.fc1 = nn.Linear(d_in, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


def test_out_of_order_modules_are_refused_with_the_names():
    p = Parameterization("mup", base_width=64)
    with pytest.raises(ValueError, match=r"head\.weight .*'input'.*fc2\.weight .*'readout'.*roles=") as exc:
        p.apply(_OutOfOrder(512), width=512)
    assert "base_model=" in str(exc.value)
    # either fix works and gives the forward-order roles
    for kw in ({"roles": {"head.*": "readout", "fc1.weight": "input", "fc2.weight": "hidden", "fc*.bias": "bias"}},
               {"base_model": _OutOfOrder(64)}):
        model = _OutOfOrder(512)
        p.apply(model, width=512, **kw)
        roles = {n: r.kind for n, r in p.layout(model).roles.items()}
        assert roles["head.weight"] == "readout" and roles["fc1.weight"] == "input"
        assert roles["fc2.weight"] == "hidden", kw


def test_in_order_model_whose_data_dim_equals_the_width_is_accepted():
    # first layer 512 -> 512 (data dim = width): an input layer, not a contradiction
    p = Parameterization("mup", base_width=64)
    model = _seq(512, d_in=512, d_out=10)
    p.apply(model, width=512)
    roles = [r.kind for r in p.layout(model).roles.values()]
    assert roles == ["input", "bias", "hidden", "bias", "readout", "scalar"]


# ---------------------------------------------------------------- 3. frozen tensors
def test_frozen_tensors_are_kept_unless_asked():
    p = Parameterization("mup", base_width=16)
    model = _seq(64)
    with torch.no_grad():
        model[0].weight.fill_(0.25)
    model[0].weight.requires_grad_(False)
    w_trainable = model[2].weight.clone()
    p.apply(model)
    assert torch.equal(model[0].weight, torch.full_like(model[0].weight, 0.25))
    assert not torch.equal(model[2].weight, w_trainable)  # trainable ones are initialised
    p.apply(model, reinit=True, reinit_frozen=True)
    assert model[0].weight.std() > 0.1 and not model[0].weight.requires_grad
    with pytest.raises(TypeError, match="reinit_frozen"):
        p.apply(model, reinit=True, reinit_frozen=1)


# ---------------------------------------------------------------- 4./5. stock attention
class _Encoder(nn.Module):
    def __init__(self, width: int, heads: int = 4, vocab: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)))


def test_transformer_encoder_works_with_base_model_alone():
    p = Parameterization("mup", base_width=32)
    model = _Encoder(128, heads=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HeadDimWarning)  # head_dim fixed at 8: no warning
        p.apply(model, base_model=_Encoder(32, heads=4))
    roles = {n: r for n, r in p.layout(model).roles.items()}
    attn = "encoder.layers.0.self_attn."
    assert roles[attn + "in_proj_weight"].kind == "hidden"
    assert roles[attn + "in_proj_weight"].m_in == roles[attn + "in_proj_weight"].m_out == 4.0
    assert roles[attn + "in_proj_bias"].kind == "bias"
    assert roles[attn + "out_proj.weight"].kind == "hidden"
    assert roles["embed.weight"].kind == "input" and roles["head.weight"].kind == "readout"
    # hidden init std = init_std / sqrt(base fan-in) * m^-1/2 = 1/sqrt(width)
    w = model.encoder.layers[1].self_attn.in_proj_weight
    assert w.std().item() == pytest.approx(1 / math.sqrt(128), rel=0.05)
    groups = p.param_groups(model, lr=1e-3)
    lr_of = {n: g["lr"] for g in groups for n in g["names"]}
    assert lr_of[attn + "in_proj_weight"] == pytest.approx(1e-3 / 4)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = torch.optim.AdamW(groups)
    x = torch.randint(0, 32, (2, 6))
    F.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    opt.step()


def test_growing_stock_head_dim_warns_for_mup_only():
    base = _Encoder(32, heads=4)
    with pytest.warns(HeadDimWarning, match=r"self_attn \(head_dim 32, 8 at the base.*grow the number of heads"):
        Parameterization("mup", base_width=32).apply(_Encoder(128, heads=4), base_model=base)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HeadDimWarning)
        Parameterization("sp", base_width=32).apply(_Encoder(128, heads=4), base_model=base)


# ---------------------------------------------------------------- 6. coord_check roles=
def test_coord_check_passes_roles_through():
    from lmech.sim.coord_check import coord_check

    def make(width: int, depth: int) -> nn.Module:
        return _OutOfOrder(width, d_in=8, d_out=3)

    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g))
    kw = dict(widths=(16, 32), steps=1, seeds=1, batch=batch, controls=(), lr=1e-2)
    with pytest.raises(ValueError, match="roles="):
        coord_check(make, "mup", **kw)
    roles = {"head.weight": "readout", "head.bias": "scalar", "fc1.weight": "input", "fc2.weight": "hidden",
             "fc*.bias": "bias"}
    res = coord_check(make, "mup", roles=roles, **kw)
    assert res.verdict in ("pass", "fail", "inconclusive")
    with pytest.raises(TypeError, match="roles"):
        coord_check(make, "mup", roles=["fc1.weight"], **kw)


# ---------------------------------------------------------------- 7. optimizer family
@pytest.mark.parametrize("built_for, cls", [("adam", torch.optim.SGD), ("sgd", torch.optim.AdamW),
                                            ("sgd", torch.optim.Adam)])
def test_groups_for_the_other_optimizer_family_are_refused_at_step(built_for, cls):
    p = Parameterization("mup", base_width=16, optimizer=built_for)
    model = _seq(64)
    p.apply(model)
    opt = cls(p.param_groups(model, lr=1e-3), lr=1e-3)
    before = [t.detach().clone() for t in model.parameters()]
    F.cross_entropy(model(torch.randn(4, 20)), torch.tensor([0, 1, 2, 3])).backward()
    with pytest.raises(ValueError, match=f"optimizer=.{built_for}."):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing was updated
    with pytest.raises(ValueError, match="optimizer"):
        p.check_optimizer(opt)
    with pytest.raises(ValueError, match="optimizer"):
        check_optimizer(opt)


def test_matching_and_plain_optimizers_pass():
    for kind, cls in (("adam", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        p = Parameterization("mup", base_width=16, optimizer=kind)
        model = _seq(64)
        p.apply(model)
        opt = cls(p.param_groups(model, lr=1e-3), lr=1e-3)
        F.cross_entropy(model(torch.randn(4, 20)), torch.tensor([0, 1, 2, 3])).backward()
        opt.step()
        opt.step()
        p.check_optimizer(opt)
        assert all(g["lmech_optimizer"] == kind for g in opt.param_groups)
        # adding groups of the wrong kind later is caught at the next step
        other = Parameterization("mup", base_width=16, optimizer="sgd" if kind == "adam" else "adam")
        other = Parameterization("mup", base_width=4, optimizer=other.optimizer)
        extra = _seq(8)
        other.apply(extra)
        opt.add_param_group(other.param_groups(extra, lr=1e-3)[0])
        with pytest.raises(ValueError, match="optimizer"):
            opt.step()
    # an optimizer without lmech groups is never refused
    model = _seq(8)
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    p = Parameterization("mup", base_width=16, optimizer="adam")
    with pytest.raises(ValueError, match="adam"):
        p.check_optimizer(torch.optim.SGD(model.parameters(), lr=0.1))


# ---------------------------------------------------------------- 8. merged groups
def test_groups_with_equal_hyperparameters_share_one_group():
    p = Parameterization("mup", base_width=16)
    model = _seq(64)
    p.apply(model)
    groups = p.param_groups(model, lr=1e-3, weight_decay=0.1)
    keys = [(g["lr"], g["eps"], g["weight_decay"]) for g in groups]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not all(math.isclose(x, y, rel_tol=1e-10) for x, y in zip(a, b)), (a, b)
    # float noise in the factors does not split groups: lr = 3e-3 * (1/3) * 3 style products
    sp = Parameterization("sp", base_width=16)
    m2 = _seq(48)
    sp.apply(m2)
    assert len(sp.param_groups(m2, lr=0.1 / 3 * 3)) == 1
    assert len(sp.param_groups(m2, lr=1e-3, weight_decay=0.1)) == 2  # decayed / not decayed
