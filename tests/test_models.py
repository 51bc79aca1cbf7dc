"""Tests of lmech.models: shapes, causality, attention paths, multipliers, bad input."""
from __future__ import annotations

import pytest
import torch

from lmech.models import GPT, MLP, MODELS, ResMLP, build
from lmech.param import Parameterization


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_build_and_shapes():
    x = torch.randn(5, 7)
    assert build("mlp", d_in=7, d_out=3, width=16, depth=4)(x).shape == (5, 3)
    assert build("resmlp", d_in=7, d_out=3, width=16, depth=3)(x).shape == (5, 3)
    gpt = build("gpt", vocab_size=11, seq_len=6, width=32, depth=2)
    assert gpt(torch.randint(0, 11, (2, 6))).shape == (2, 6, 11)
    assert gpt(torch.randint(0, 11, (2, 4))).shape == (2, 4, 11)
    assert set(MODELS) == {"mlp", "resmlp", "gpt"}
    with pytest.raises(ValueError, match="`name`"):
        build("cnn")


def test_mlp_layer_count():
    m = MLP(4, 2, width=8, depth=4)
    assert sum(isinstance(mod, torch.nn.Linear) for mod in m.modules()) == 4
    assert m.width == 8 and m.depth == 4 and m.config["depth"] == 4


def test_resmlp_branch_multiplier_scales_branch():
    torch.manual_seed(0)
    m = ResMLP(4, 2, width=8, depth=1)
    x = torch.randn(3, 4)
    h = m.embed(x)
    block = m.blocks[0]
    full = block(h)
    block.branch_multiplier = 0.25
    torch.testing.assert_close(block(h), h + 0.25 * (full - h))


def test_gpt_is_causal():
    torch.manual_seed(0)
    m = GPT(13, seq_len=8, width=32, depth=2)
    idx = torch.randint(0, 13, (1, 8))
    out = m(idx)
    idx2 = idx.clone()
    idx2[0, 5:] = (idx2[0, 5:] + 1) % 13
    out2 = m(idx2)
    torch.testing.assert_close(out[:, :5], out2[:, :5])
    assert not torch.allclose(out[:, 5:], out2[:, 5:])


def test_gpt_explicit_attention_path_matches_sdpa():
    torch.manual_seed(0)
    m = GPT(13, seq_len=8, width=32, depth=2, n_heads=2)
    Parameterization("mup", base_width=16, base_depth=2).apply(m)
    idx = torch.randint(0, 13, (2, 8))
    ref = m(idx)
    seen = []
    for b in m.blocks:
        b.attn.logit_hook = seen.append
    torch.testing.assert_close(m(idx), ref, rtol=1e-5, atol=1e-5)
    assert len(seen) == 2 and seen[0].shape == (2, 2, 8, 8)


def test_gpt_heads_config():
    assert GPT(5, width=64, head_dim=16).blocks[0].attn.n_heads == 4
    assert GPT(5, width=64, n_heads=2).blocks[0].attn.head_dim == 32
    with pytest.raises(ValueError, match="`n_heads`"):
        GPT(5, width=64, n_heads=2, head_dim=16)
    with pytest.raises(ValueError, match="`width`"):
        GPT(5, width=60, head_dim=16)


def test_tied_gpt_shares_tensor():
    m = GPT(9, width=32, tie_weights=True)
    assert m.lm_head.weight is m.wte.weight
    assert m.n_params == sum(p.numel() for p in m.parameters())


def test_models_reject_bad_sizes():
    for kw in ({"d_in": 0, "d_out": 2}, {"d_in": 2, "d_out": -1}):
        with pytest.raises(ValueError):
            MLP(**kw)
    with pytest.raises(ValueError, match="`depth`"):
        MLP(3, 2, depth=1)
    with pytest.raises(ValueError, match="`activation`"):
        MLP(3, 2, activation="swish")
    with pytest.raises(ValueError, match="`vocab_size`"):
        GPT(0)
    with pytest.raises(TypeError, match="`width`"):
        ResMLP(3, 2, width=2.5)
