"""from_module on real models: the mean-field theory of the translated network against the torch
probe, site by site, with attention and embeddings measured only and marked so.

Every disagreement is either inside the Monte-Carlo resolution (|z| below the Bonferroni
threshold of the whole family of comparisons) or explained here and in the README:

- the forward moment of a layer norm with PyTorch's ε: the theory is the infinite-width
  v/(v + ε) (1 − ε/v to first order); at width n the per-row variance v_r fluctuates around
  (n − 1)v/n (for Gaussian units v·χ²_{n−1}/n), and E[v_r/(v_r + ε)] is lower by ≈ 3ε/(n·v)
  (Jensen plus the biased variance): 3e-4 for GPT-2's residual stream (v ≈ 1e-3, n = 128),
  1e-7 for a stream of variance 1. That is far below 1 %, but several standard errors of a
  layer norm's nearly constant output. Those rows are checked against this finite-width
  bound (0 ≤ theory − measured ≤ 4ε/(n·v) + 4 SE) instead of the z-test.
- the forward moment of a batch norm with PyTorch's ε = 1e-5: gradmath's batch norm has ε = 0
  and pins q = 1; the model's is 1 − ε·E[1/σ²] = 1 − ε·B/((B − 3)·s²) (σ² ~ s²χ²_{B−1}/B,
  s² = q(1 − c) the variance over the batch), 3e-5 below 1 for q = 1/3 — invisible next to
  any other row, but many standard errors of the pinned one. Checked against
  0 ≤ theory − measured ≤ 4ε/q + 4 SE (c ≤ 0.7 here) instead of the z-test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradmath.network import BatchNorm, Dropout, LayerNorm, Measured
from gradmath.numeric import simulate
from gradmath.torch import from_module, predict, probe
from gradmath.torch.report import Report, explain
from gradmath.validate import Comparison, bonferroni_z, compare


def _checked(report: Report, eps: float) -> np.ndarray:
    return _without_ln_forward(report.comparison, eps)


def _without_ln_forward(comparison: Comparison, eps: float) -> np.ndarray:
    """The z-scores without the normalisations' forward rows, which are checked against the
    ε bounds instead (module docstring)."""
    th, me, z = comparison.theory, comparison.sim, comparison.z.copy()
    for i, site in enumerate(me.sites):
        if site.kind not in ("layernorm", "batchnorm"):
            continue
        # the input it normalises: a centred dense output or residual stream
        assert me.sites[i - 1].kind in ("residual", "dense"), site.name
        v = math.exp(th.log_q[i - 1])
        gap = th.log_q[i] - me.log_q[i]
        se = float(comparison.se[0, i])
        bound = 4 * eps / (site.width * v) if site.kind == "layernorm" else 4 * eps / v
        assert -4 * se <= gap <= bound + 4 * se, (site.name, gap, se)
        z[0, i] = np.nan
    return z


def _assert_family_agrees(z: np.ndarray) -> None:
    tested = z[~np.isnan(z)]
    limit = bonferroni_z(tested.size, 0.01)
    assert np.max(np.abs(tested)) < limit, (np.nanargmax(np.abs(z)), np.nanmax(np.abs(z)))


NORM_MLPS = {
    # Linear → LayerNorm → Tanh → Dropout(0.2) → Linear → ReLU → Linear (no batch statistics:
    # correlations between examples do not enter)
    "layernorm-dropout": lambda: nn.Sequential(
        nn.Linear(64, 128), nn.LayerNorm(128), nn.Tanh(), nn.Dropout(0.2), nn.Linear(128, 128),
        nn.ReLU(), nn.Linear(128, 32)),
    # Linear → BatchNorm1d (train mode) → ReLU → Linear → BatchNorm1d → Tanh → Linear →
    # BatchNorm1d (gradmath's batch-norm theory: Dense → BatchNorm → activation → Dense →
    # BatchNorm stacks; it refuses dropout below a batch norm, whose mask breaks the batch
    # structure of the gradient)
    # Input width 1024 for a batch of 32: the theory takes the examples' inputs as
    # uncorrelated, but the Gram matrix of B examples in n₀ dimensions spreads its eigenvalues
    # by ~√(B/n₀) (Marchenko–Pastur), which every batch norm's E[1/σ²] feels: with n₀ = 64 the
    # gradients sit 2–5 % above theory in probe and NumPy simulation alike (6 SE at 96 inits).
    "batchnorm": lambda: nn.Sequential(
        nn.Linear(1024, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.Tanh(), nn.Linear(256, 32),
        nn.BatchNorm1d(32)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(NORM_MLPS))
def test_norm_and_dropout_mlps_probe_simulate_and_theory_agree(name: str) -> None:
    """Every layer predicted (torch defaults, read from the weights; dropout in train mode
    scales the second moments by 1/(1 − p)); torch probe, NumPy simulation and theory agree."""
    torch.manual_seed(0)
    model = NORM_MLPS[name]()
    n0 = model[0].in_features
    # 32 examples with orthogonal inputs of mean square 1: exactly uncorrelated, as the
    # theory's examples are (a Gaussian batch in n₀ dimensions is only nearly so)
    g = torch.randn(n0, 32, generator=torch.Generator().manual_seed(1))
    x = torch.linalg.qr(g).Q.T.contiguous() * math.sqrt(n0)
    net = from_module(model, x)
    layers = net.body.layers
    if name == "layernorm-dropout":
        assert layers[1] == LayerNorm(eps=1e-5) and layers[3] == Dropout(0.2)
    else:
        assert isinstance(layers[1], BatchNorm)
    measured = probe(model, x, n_inits=16, seed=0, dtype=torch.float64)
    comparison = compare(predict(net, like=measured), measured)
    _assert_family_agrees(_without_ln_forward(comparison, eps=1e-5))
    sim = simulate(net, n_networks=16, batch=32, seed=0)
    _assert_family_agrees(_without_ln_forward(compare(predict(net, like=sim), sim), eps=1e-5))


def test_vgg_style_cnn_without_batch_norm_probe_and_theory_agree() -> None:
    """3×3 convs (padding 1, torch's default init read from the weights), ReLU, 2×2 average
    pooling, global average pooling, a linear classifier: every site predicted with the
    positions' covariance (gradmath.network's Conv/AvgPool, zero padding modelled).

    Except the first convolution's weight gradient: at fan-in 27 (3 channels × 3 × 3) under a
    global average pool it exceeds mean field, the known finite-fan-in limit (README; pinned in
    tests/torch/test_cnn.py). This test passed it only by the probe streams' luck (z = 4.4 at
    seed 0, 6.1–6.2 at seeds 2 and 3 with the earlier conv redraw; 5.6–7.6 at seeds 0–3 with
    the current one): asserted above the theory, every other row |z| below the threshold."""
    from .models import vgg

    torch.manual_seed(0)
    model = vgg((16, "M", 32, "M", 32))
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = from_module(model, x)
    assert [s.name for s in net.sites] == ["conv1", "avgpool1", "conv2", "avgpool2", "conv3",
                                           "avgpool3", "dense1"]  # fmt: skip
    measured = probe(model, x, n_inits=16, seed=0, dtype=torch.float64)
    c = compare(predict(net, like=measured), measured)
    assert c.z[2, 0] > 4.0  # conv1's weight gradient, above mean field
    rest = ~np.isnan(c.z)
    rest[2, 0] = False
    assert np.all(np.abs(c.z_normal[rest]) < c.z_max)


def test_transformer_encoder_is_predicted_around_measured_attention() -> None:
    """nn.TransformerEncoder (post-LN, ReLU feed-forward, dropout 0.1 in train mode): layer
    norms, residual sums, feed-forward layers and every gradient predicted; self-attention
    measured only (on other inits than the probe's) and marked so.

    Mean field drops the layer norms' O(1/n) backward loss (the projection off span(1, y)):
    at width 128 every gradient row under the top layer norm sits 0.9 % below it (z −1.9 to
    −3.5 at 64 inits), at width 512 0–0.5 % (|z| ≤ 2.5); at the 16 inits here that is inside
    the resolution (it moves z by about −1 to −1.7), not a tolerance."""
    layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.1, batch_first=True)
    torch.manual_seed(0)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = torch.randn(4, 8, 128, generator=torch.Generator().manual_seed(1))
    report = explain(model, x, n_inits=16)
    only = [report.measured.sites[i].name for i in report.measured_only]
    assert only == ["measured1", "measured2"]
    assert report.segments() == [
        "measured only: measured1 (layers.0.self_attn)",
        "theory: residual1 … layernorm2",
        "measured only: measured2 (layers.1.self_attn)",
        "theory: residual3 … layernorm4",
    ]
    assert "measured only" in report.table()
    net = report.theory.network
    assert sum(isinstance(m, Measured) for m in _walk(net.body)) == 2
    _assert_family_agrees(_checked(report, eps=1e-5))


def test_bert_embeddings_and_attention_measured_the_rest_predicted() -> None:
    transformers = pytest.importorskip("transformers")  # test-only models (.ci/run installs it)
    config = transformers.BertConfig(vocab_size=1000, num_hidden_layers=2, hidden_size=256,
                                     num_attention_heads=4, intermediate_size=512)  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertModel(config)  # train mode: dropout 0.1 is part of the theory
    ids = {"input_ids": torch.randint(0, config.vocab_size, (4, 8),
                                      generator=torch.Generator().manual_seed(1))}  # fmt: skip
    report = explain(model, ids, n_inits=16)
    assert report.segments() == [
        "measured only: measured1 (embeddings.word_embeddings)",
        "measured only: measured2 (embeddings.token_type_embeddings)",
        "measured only: residual1 (embeddings.add)",
        "measured only: measured3 (embeddings.position_embeddings)",
        "measured only: residual2 (embeddings.add)",
        "theory: layernorm1",
        "measured only: measured4 (encoder.layer.0.attention)",
        "theory: dense1 … layernorm2",
        "measured only: measured5 (encoder.layer.1.attention)",
        "theory: dense3 … layernorm3",
    ]
    # the pooler (off the path to last_hidden_state) is not a row
    assert [s.name for s in report.measured.sites][-1] == "layernorm3"
    # position embeddings are shared by the 4 examples: their gradient is 4 examples' sum
    i = report.measured.names.index("measured3")
    assert report.theory.log_grad_q[i] - report.theory.log_grad_q[i - 1] == pytest.approx(
        math.log(4)
    )
    _assert_family_agrees(_checked(report, eps=1e-12))


@pytest.mark.slow
def test_gpt2_is_predicted_around_measured_attention_and_embeddings() -> None:
    """GPT-2 (eval mode, pre-LN): residual streams, layer norms (ε = 1e-5 against a stream
    variance of ~1e-3: 1 % lower output, modelled), feed-forward layers, lm_head and every
    gradient predicted; embeddings and attention measured only. HF's init is read as declared
    (N(0, 0.02²), residual projections N(0, 0.02²/(2·n_layer))), not as a noisy sample
    variance; lm_head's weight is tied to the token embedding, and its gradient row is its own
    part (the probe's per-row estimator)."""
    transformers = pytest.importorskip("transformers")  # test-only models (.ci/run installs it)
    config = transformers.GPT2Config(n_layer=4, n_embd=128, n_head=4)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = {"input_ids": torch.randint(0, config.vocab_size, (4, 16),
                                      generator=torch.Generator().manual_seed(1))}  # fmt: skip
    report = explain(model, ids, n_inits=16)
    segs = report.segments()
    assert segs[:3] == ["measured only: measured1 (transformer.wte)",
                        "measured only: measured2 (transformer.wpe)",
                        "measured only: residual1 (transformer.add)"]  # fmt: skip
    assert segs[-1] == "theory: residual8 … dense9"
    assert sum(s.startswith("measured only") for s in segs) == 7
    z = _checked(report, eps=1e-5)
    assert np.count_nonzero(~np.isnan(z)) == 66  # 33 rows × (q, q̃) + 9 weights − 9 LN
    _assert_family_agrees(z)
    assert report.diagnosis.verdict == report.theory_diagnosis.verdict == "healthy"


def _walk(layer: object) -> list[object]:
    out = [layer]
    for c in layer.children():  # type: ignore[attr-defined]
        out += _walk(c)
    return out
