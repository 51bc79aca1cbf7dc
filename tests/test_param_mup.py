"""Cross-check against microsoft/mup's MuAdam / MuSGD (optional, test-only dependency).

Skipped unless ``mup`` is importable; e.g. run
``/work/mupvenv/bin/python -m pytest tests/test_param_mup.py`` with a side venv that holds
mup next to lmech's torch. mup's groups do not scale Adam epsilon (lmech uses ``eps / m``,
CompleteP's Table 1), so learning rates and weight decays are compared.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

mup = pytest.importorskip("mup")

from lmech.models import MLP  # noqa: E402
from lmech.param import Parameterization  # noqa: E402


def _mup_mlp(width):
    return nn.Sequential(nn.Linear(12, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), mup.MuReadout(width, 5))


def _per_param(opt):
    out = {}
    for g in opt.param_groups:
        for p in g["params"]:
            out[id(p)] = (g["lr"], g["weight_decay"])
    return out


@pytest.mark.parametrize("width", [64, 256])
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_lr_and_wd_match_mup(width, kind):
    base = 32
    ref = _mup_mlp(width)
    mup.set_base_shapes(ref, _mup_mlp(base), delta=_mup_mlp(2 * base))
    if kind == "adam":
        ref_opt = mup.MuAdamW(ref.parameters(), lr=1e-3, weight_decay=0.1)
    else:
        ref_opt = mup.MuSGD(ref.parameters(), lr=1e-2, weight_decay=0.1)
    ref_map = _per_param(ref_opt)
    ours = MLP(12, 5, width=width, depth=4)
    p = Parameterization("mup", base_width=base, optimizer=kind)
    p.apply(ours)
    lr = 1e-3 if kind == "adam" else 1e-2
    opt_map = _per_param(torch.optim.SGD(p.param_groups(ours, lr=lr, weight_decay=0.1, no_decay=()), lr=lr))
    ref_vals = [ref_map[id(q)] for q in ref.parameters()]
    our_vals = [opt_map[id(q)] for q in ours.parameters()]
    assert len(ref_vals) == len(our_vals)
    for (n, _), a, b in zip(ours.named_parameters(), ref_vals, our_vals):
        assert b[0] == pytest.approx(a[0], rel=1e-12), (n, "lr", a, b)
        assert b[1] == pytest.approx(a[1], rel=1e-12), (n, "wd", a, b)
    # mup's MuReadout multiplies by 1/width_mult, as our readout site does
    assert ref[-1].width_mult() == pytest.approx(width / base)
    assert ours.readout.input_multiplier == pytest.approx(base / width)
