"""Tests of the coordinate check (API, CLI, claims): muP family passes, controls separate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lmech.param import Parameterization
from lmech.sim.coord_check import coord_check
from lmech.sim.coord_check import fit_slope


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fit_slope_exact_power_law():
    x = [1, 2, 4, 8]
    assert fit_slope(x, [3 * v**0.7 for v in x]) == pytest.approx(0.7)
    assert fit_slope(x, [5.0] * 4) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(fit_slope(x, [1.0, 0.0, 1.0, 1.0]))


@pytest.fixture(scope="module")
def mlp_width_result():
    return coord_check("mlp", "mup", widths=[64, 128, 256, 512], steps=3, seeds=3)


def test_mup_width_passes_and_controls_separate(mlp_width_result):
    r = mlp_width_result
    assert r.verdict == "pass", r.summary()
    assert r.max_abs_slope <= 0.1
    assert r.controls == ["sp", "ntp"]
    # SP under Adam: hidden-feature change grows ~ width (slope about +1) once features move (t = 2;
    # the readout starts at zero, so nothing below it moves at t = 1)
    assert r.slopes["sp"]["layers.1"]["delta"][2] >= 0.5
    # NTP: features freeze like width^-1/2 (kernel regime)
    assert r.slopes["ntp"]["layers.1"]["delta"][2] <= -0.3
    rows = [row for row in r.rows if row["scheme"] == "mup" and row["quantity"] == "layers.1"]
    assert len(rows) == 3 * 4 * 4  # stats x t x widths
    d = r.to_dict()
    json.dumps(d)
    assert d["passed"] is True


def test_sp_fails_the_check(mlp_width_result):
    r = coord_check("mlp", "sp", widths=[64, 128, 256, 512], steps=3, seeds=2)
    assert r.verdict == "fail" and r.controls == []
    assert r.max_abs_slope >= 0.5
    # and the NTP scheme fails too
    assert coord_check("mlp", "ntp", widths=[64, 128, 256, 512], steps=3, seeds=2).verdict == "fail"


def test_mup_sgd_width_passes():
    r = coord_check("mlp", "mup", widths=[64, 128, 256, 512], steps=3, seeds=3, optimizer="sgd")
    assert r.verdict == "pass", r.summary()


@pytest.mark.parametrize("scheme,depths", [("depth_mup", [2, 4, 8, 16, 32]), ("completep", [2, 4, 8, 16, 32, 64])])
def test_depth_schemes_pass_and_plain_mup_separates(scheme, depths):
    r = coord_check("resmlp", scheme, depths=depths, width=64, steps=4, seeds=3)
    assert r.verdict == "pass", r.summary()
    assert r.quantities == ["resid.last", "output"]
    # without depth scaling the residual stream grows like sqrt(depth) at init
    assert r.slopes["mup"]["resid.last"]["size"][0] >= 0.4


def test_plain_mup_fails_depth_check():
    r = coord_check("resmlp", "mup", depths=[2, 4, 8, 16], width=64, steps=3, seeds=2)
    assert r.verdict == "fail"


def test_without_controls_is_inconclusive_and_random_readout_option():
    r = coord_check("resmlp", "mup", widths=[32, 64, 128], steps=2, seeds=2, controls=(), zero_readout=False)
    assert r.verdict in ("inconclusive", "fail") and not r.passed
    assert r.zero_readout is False
    # the readout output shrinks like width^-1/2 at init under muP with a random readout (Table 8):
    assert r.slopes["mup"]["readout"]["size"][0] == pytest.approx(-0.5, abs=0.15)


def test_callable_model_and_parameterization_object(tmp_path):
    def make(width, depth):
        return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3))

    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g))
    p = Parameterization("mup", base_width=32, zero_readout=True)
    r = coord_check(make, p, widths=[32, 64, 128, 256], batch=batch, lr=1e-2, steps=3, seeds=2)
    assert set(r.quantities) == {"0", "2", "4", "output"}
    assert r.verdict == "pass", r.summary()
    fig = r.plot(str(tmp_path / "cc.png"))
    assert (tmp_path / "cc.png").stat().st_size > 1000 and fig is not None


def test_bad_inputs():
    with pytest.raises(ValueError, match="`depths`"):
        coord_check("mlp", "mup", widths=[64, 128], depths=[2, 4])
    with pytest.raises(ValueError, match="`widths`"):
        coord_check("mlp", "mup", widths=[128, 64])
    with pytest.raises(ValueError, match="`widths`"):
        coord_check("mlp", "mup", widths=[64])
    with pytest.raises(ValueError, match="`model`"):
        coord_check("cnn", "mup")
    with pytest.raises(ValueError, match="`scheme`"):
        coord_check("mlp", "mu_p")
    with pytest.raises(TypeError, match="`batch`"):
        coord_check(lambda w, d: nn.Linear(3, w), "mup", lr=1e-3)
    with pytest.raises(ValueError, match="`model`"):
        coord_check("mlp", "completep", depths=[2, 4, 8])  # no residual blocks
    with pytest.raises(ValueError, match="`steps`"):
        coord_check("mlp", "mup", steps=0)


# --------------------------------------------------------------------------- CLI
def test_cli_pass_fail_usage(tmp_path, capsys):
    from lmech.cli import main

    out = tmp_path / "cc"
    rc = main(["coord-check", "--model", "mlp", "--scheme", "mup", "--widths", "64,128,256,512", "--steps", "3",
               "--seeds", "2", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().out
    data = json.loads((out / "coord_check.json").read_text())
    assert data["verdict"] == "pass" and "slopes" in data and data["grid"] == [64, 128, 256, 512]
    for scheme in ("mup", "sp", "ntp"):
        assert (out / f"coord_check_{scheme}.png").exists()
    rc = main(["coord-check", "--scheme", "sp", "--widths", "64,128,256", "--steps", "2", "--seeds", "1",
               "--out", str(tmp_path / "sp"), "--no-plot", "--no-progress"])
    assert rc == 1
    rc = main(["coord-check", "--scheme", "mup", "--widths", "64,128,256", "--steps", "2", "--seeds", "1",
               "--no-controls", "--out", str(tmp_path / "nc"), "--no-plot", "--no-progress"])
    assert rc == 1  # no controls: at best inconclusive
    for bad in (["--widths", "128,64"], ["--scheme", "mu_p"], ["--widths", "64,x"], ["--steps", "0"],
                ["--widths", "64,128", "--depths", "2,4"], ["--model", "mlp", "--depths", "2,4,8"]):
        with pytest.raises(SystemExit) as exc:
            main(["coord-check", "--out", str(tmp_path / "bad"), "--no-progress", *bad])
        assert exc.value.code == 2, bad


def test_cli_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, lmech.cli; lmech.cli.build_parser(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


# --------------------------------------------------------------------------- claims
def test_claim_outcome_reports_the_check_and_its_controls():
    from dataclasses import replace

    from lmech.claims import get_claim

    c = get_claim("param.coord_check.width.mlp_sgd")
    r = c.evaluate("quick", 0, setting=replace(c.quick, widths=(32, 64, 128, 256), steps=2, n_seeds=2))
    assert r.error is None, r.error
    d = r.details
    assert r.value == pytest.approx(max(v for v in d["max_abs_slope_by_quantity"].values() if v is not None))
    assert set(d["control_max_slope"]) == {"sp", "ntp"} and len(r.checks) == 2
    assert [s["label"] for s in r.panels[0]["series"]] == ["muP sim", "SP sim", "NTP sim", "muP theory"]


@pytest.mark.slow
def test_gpt_width_check_large_grid_tolerance_01():
    r = coord_check("gpt", "mup", widths=[64, 128, 256, 512, 1024], steps=4, seeds=3)
    assert r.verdict == "pass", r.summary()
