"""Transfer doctor and transfer recommend.

The doctor's verdicts are checked on models whose answer is known independently: the muP
rules (measured update effects flat, SP's growing like width under Adam), a deliberately
wrong role (a hidden matrix declared ``input`` keeps the base learning rate, so its update
grows with width) and stock attention whose head dimension grows with width (muP needs a
``1/head_dim`` logit scale that ``nn.MultiheadAttention`` cannot give).
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from lmech.cli import main
from lmech.sim.doctor import example_batch, transfer_doctor
from lmech.sweep.recommend import recommend


def _mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


class _Encoder(nn.Module):
    """A plain PyTorch transformer: stock nn.TransformerEncoderLayer (nn.MultiheadAttention)."""

    def __init__(self, width: int, heads: int | None = None, vocab: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, heads or width // 8, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)))


WIDTHS = (32, 64, 128, 256)


def test_mlp_mup_holds_and_sp_breaks_on_the_hidden_weight():
    r = transfer_doctor(_mlp, WIDTHS, "mup", steps=5)
    assert r.verdict == "holds", r.summary()
    assert max(abs(s) for s in r.slopes("mup", "update").values()) < 0.15
    # the SP control: the hidden weight's update effect grows ~ width under Adam with one learning rate
    assert r.slopes("sp", "update")["2.weight"] > 0.6 and r.control_max_slope > 0.6
    sp = transfer_doctor(_mlp, WIDTHS, "sp", steps=5, control=None)
    assert sp.verdict == "breaks"
    assert "2.weight" in {f.where for f in sp.findings}
    assert "roles" in r.roles_table or "hidden" in r.roles_table


def test_a_wrong_role_is_named_with_its_cause():
    r = transfer_doctor(_mlp, WIDTHS, "mup", steps=5, roles={"2.weight": "input"}, control=None)
    assert r.verdict == "breaks"
    bad = {f.where: f for f in r.findings}
    assert "2.weight" in bad and bad["2.weight"].slope > 0.5
    assert "'2.weight': 'hidden'" in bad["2.weight"].cause


def test_stock_transformer_mup_holds_sp_breaks():
    mup = transfer_doctor(_Encoder, WIDTHS, "mup", steps=5)
    assert mup.verdict == "holds", mup.summary()
    assert mup.control_max_slope > 1.0
    sp = transfer_doctor(_Encoder, WIDTHS, "sp", steps=5, control=None)
    assert sp.verdict == "breaks"
    assert any("self_attn.in_proj_weight" in f.where for f in sp.findings)


def test_growing_head_dim_breaks_mup_at_the_attention():
    r = transfer_doctor(lambda w: _Encoder(w, heads=2), (32, 64, 128), "mup", steps=3, seeds=1, control=None)
    assert r.verdict == "breaks"
    attn = [f for f in r.findings if f.where.endswith("self_attn")]
    assert len(attn) == 2 and all("head dimension grows" in f.cause for f in attn)


def test_a_control_that_cannot_separate_is_inconclusive():
    r = transfer_doctor(_mlp, (32, 64, 128), "mup", steps=2, seeds=1, separation=5.0)
    assert r.verdict == "inconclusive" and "did not break" in r.notes[0]


def test_base_model_of_the_same_shape_is_accepted():
    from lmech.param import Parameterization

    # the base model at the base width has the same shapes: roles come from the chain rule, m = 1
    model = Parameterization("mup", base_width=32).apply(_mlp(32), base_model=_mlp(32), width=32)
    assert model[2].weight.std().item() == pytest.approx(32 ** -0.5, rel=0.15)


def test_example_batch_fits_the_first_layer():
    x, y = example_batch(_mlp(8))
    assert x.shape == (16, 16) and y.dtype == torch.int64 and int(y.max()) < 10
    x, y = example_batch(_Encoder(16))
    assert x.dtype == torch.int64 and y.shape == x.shape
    with pytest.raises(ValueError, match="model"):
        example_batch(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(widths=(32, 64)), ValueError, "widths"),
    (dict(widths=(64, 32, 128)), ValueError, "widths"),
    (dict(widths="64,128"), TypeError, "widths"),
    (dict(scheme="bogus"), ValueError, "scheme"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(roles=["2.weight"]), TypeError, "roles"),
])
def test_bad_input(kwargs, err, match):
    kw = dict(widths=(16, 32, 64), steps=1, seeds=1)
    kw.update(kwargs)
    with pytest.raises(err, match=match):
        transfer_doctor(_mlp, **kw)


def test_bad_factory():
    with pytest.raises(TypeError, match="make_model"):
        transfer_doctor(42, (16, 32, 64))
    with pytest.raises(TypeError, match="make_model"):
        transfer_doctor(lambda w, d: _mlp(w), (16, 32, 64))
    with pytest.raises(TypeError, match="make_model"):
        transfer_doctor(lambda w: "not a module", (16, 32, 64))


def test_cli_doctor_writes_json_and_exit_status(tmp_path, monkeypatch, capsys):
    (tmp_path / "nets.py").write_text(
        "import torch\n\ndef make(width):\n    return torch.nn.Sequential(torch.nn.Linear(8, width), "
        "torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["transfer", "doctor", "--model", "nets:make", "--widths", "32,64,128,256", "--no-progress", "--no-plot"]
    assert main(base + ["--out", "ok"]) == 0
    d = json.loads((tmp_path / "ok" / "doctor.json").read_text())
    assert d["verdict"] == "holds" and d["control"] == "sp"
    assert main(base + ["--out", "bad", "--role", "2.weight=input"]) == 1
    assert "2.weight" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["transfer", "doctor", "--model", "nets:nothing", "--out", "x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["transfer", "doctor", "--model", "nets:make", "--widths", "64,32,128", "--out", "x"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ recommend
def _summary(optima, slope, passed=True, trial="lmech.sim.hp_trial:run_trial"):
    return {"spec": {"trial": trial, "base": {"model": "mlp", "depth": 3, "base_width": 64, "steps": 10},
                     "grid": {"width": [o[0] for o in optima]}},
            "analyses": {"mup": {"size_key": "width", "slope": slope, "passed": passed, "max_shift": 0.1,
                                 "optima": [{"size": s, "log2_lr": x, "interval": [x - 0.25, x + 0.25]}
                                            for s, x in optima]}}}


def test_recommend_moves_the_nearest_optimum_along_the_slope():
    opt = [(64, -7.0), (128, -7.1), (256, -7.2)]
    rec = recommend(_summary(opt, slope=-0.1), 1024)
    assert rec.nearest_size == 256 and rec.extrapolation_doublings == pytest.approx(2.0)
    assert rec.log2_lr == pytest.approx(-7.2 - 0.2)
    lo, hi = rec.lr_band
    assert lo < rec.lr < hi and math.log2(lo) == pytest.approx(-7.65, abs=1e-9)  # exact line: no slope spread
    # per-group values follow the muP rules at width 1024 (m = 16 against base 64)
    by_role = {tuple(g["roles"]): g for g in rec.groups}
    hidden = next(g for r, g in by_role.items() if "hidden" in r)
    assert hidden["lr"] == pytest.approx(rec.lr / 16)
    assert sum(g["n_params"] for g in rec.groups) > 1024 * 1024


def test_recommend_warns_and_refuses():
    rec = recommend(_summary([(64, -7.0), (128, -6.0)], slope=1.0, passed=False), 8192)
    assert any("extrapolates" in w for w in rec.warnings) and any("did not all pass" in w for w in rec.warnings)
    custom = recommend(_summary([(64, -7.0), (128, -7.0)], 0.0, trial="mine:trial"), 256)
    assert not custom.groups and any("custom trial" in w for w in custom.warnings)
    with pytest.raises(ValueError, match="scheme"):
        recommend(_summary([(64, -7.0), (128, -7.0)], 0.0), 256, scheme="sp")
    with pytest.raises(ValueError, match="experts"):
        recommend(_summary([(64, -7.0), (128, -7.0)], 0.0), 256, experts=8)
    none = _summary([(64, -7.0)], 0.0)
    none["analyses"]["mup"]["optima"][0]["log2_lr"] = None
    with pytest.raises(ValueError, match="no size has a defined optimum"):
        recommend(none, 256)


def test_cli_recommend_from_a_sweep(tmp_path, capsys):
    out = str(tmp_path / "sweep")
    assert main(["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "64", "128", "--depth", "3",
                 "--lrs", "2^-8", "2^-6", "2^-4", "--steps", "2", "--out", out, "--backend", "inprocess",
                 "--no-progress", "--no-plot"]) in (0, 1)
    capsys.readouterr()
    assert main(["transfer", "recommend", "--from", out, "--width", "512"]) == 0
    text = capsys.readouterr().out
    assert "base learning rate" in text and "hidden" in text
    rec = json.loads((tmp_path / "sweep" / "recommend_width512.json").read_text())
    assert rec["target"] == 512 and rec["groups"]
    with pytest.raises(SystemExit) as exc:
        main(["transfer", "recommend", "--from", out, "--depth", "4"])  # a width sweep needs --width
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["transfer", "recommend", "--from", str(tmp_path / "nowhere"), "--width", "512"])
    assert exc.value.code == 2
