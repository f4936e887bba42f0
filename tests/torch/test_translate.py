"""Translation of real models: structure, initializers read from the weights, and where theory
stops (attention, embeddings, pooling measured only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradmath.torch import measure, translate
from gradmath.torch.translate import Add, Conv, Dense, Norm

from .models import ResNet18, vgg


def _walk(ops):  # type: ignore[no-untyped-def]
    for op in ops:
        yield op
        if isinstance(op, Add):
            yield from _walk(op.branch)
            yield from _walk(op.shortcut)


def test_resnet18_structure_and_segments() -> None:
    torch.manual_seed(0)
    t = translate(ResNet18(), torch.randn(2, 3, 32, 32))
    ops = list(_walk(t.ops))
    kinds = [s.kind for s in t.sites]
    assert kinds.count("conv") == 20 and kinds.count("batchnorm") == 20
    assert kinds.count("residual") == 8 and kinds.count("dense") == 1
    # the stem's max-pool is predicted; the final 1×1 average pool moves nothing
    assert not t.measured and kinds.count("maxpool") == 1
    assert t.segments() == ["theory: conv1 … dense1"]
    adds = [op for op in t.ops if isinstance(op, Add)]
    assert len(adds) == 8
    assert [len(a.shortcut) for a in adds] == [0, 0, 2, 0, 2, 0, 2, 0]  # conv1×1 + BN
    convs = [op for op in ops if isinstance(op, Conv)]
    assert all(c.weight.init.name == "kaiming_normal" for c in convs)
    # torchvision's mode="fan_out": Var = 2/fan_out (fan_in's entry when the fans are equal)
    assert all(c.weight.variance == pytest.approx(2 / c.weight.fan_out, rel=1e-12) for c in convs)
    assert {c.weight.init.mode for c in convs if c.weight.fan_in != c.weight.fan_out} == {"fan_out"}
    assert convs[0].weight.fan_in == 3 * 49 and convs[0].padding == (3, 3)
    assert all(isinstance(op, Norm) and op.affine_default for op in ops if isinstance(op, Norm))


def test_vgg_pooling_is_predicted() -> None:
    torch.manual_seed(0)
    t = translate(vgg(), torch.randn(2, 3, 32, 32))
    assert [s.kind for s in t.sites].count("avgpool") == 3 and not t.measured
    t = translate(vgg(pool="max"), torch.randn(2, 3, 32, 32))
    assert [s.module for s in t.sites if s.kind == "maxpool"] == ["4", "9"] and not t.measured
    t = translate(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True)),
                  torch.randn(2, 3, 9, 9))  # fmt: skip
    assert [s.module for s in t.measured] == ["1"]  # ceil mode: measured only


@pytest.mark.slow
def test_gpt2_layernorm_residual_feedforward_predicted_attention_embeddings_measured() -> None:
    transformers = pytest.importorskip("transformers")  # test-only models (.ci/run installs it)
    config = transformers.GPT2Config(n_layer=4, n_embd=128, n_head=4)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    ids = {"input_ids": torch.randint(0, config.vocab_size, (2, 16))}
    t = translate(model, ids)
    measured = [s.module for s in t.measured]
    assert measured == ["transformer.wte", "transformer.wpe"] + [
        f"transformer.h.{i}.attn" for i in range(4)
    ]
    theory_kinds = {s.kind for s in t.sites if s.kind != "measured"}
    assert theory_kinds == {"layernorm", "residual", "dense"}
    dense = [op for op in _walk(t.ops) if isinstance(op, Dense)]
    # HF's init, read as declared by the config: N(0, 0.02²), and the residual projections
    # scaled by 1/√(2·n_layer); lm_head is the token embedding's tensor
    fc = [d for d in dense if d.site.module.endswith("c_fc")]
    proj = [d for d in dense if d.site.module.endswith("mlp.c_proj")]
    assert all(d.weight.matched and d.weight.label.startswith("declared") for d in fc + proj)
    assert [d.weight.variance for d in fc] == [0.02**2] * 4
    assert [d.weight.variance for d in proj] == [0.02**2 / 8] * 4
    assert dense[-1].tied == "transformer.wte" and not fc[0].tied
    assert (fc[0].weight.fan_in, fc[0].weight.fan_out) == (128, 512)
    segs = t.segments()
    assert segs[-1] == "theory: residual8 … dense9"
    assert sum(s.startswith("measured only") for s in segs) == 6


def test_bert_and_transformer_encoder() -> None:
    transformers = pytest.importorskip("transformers")  # test-only models (.ci/run installs it)
    config = transformers.BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                     intermediate_size=128)  # fmt: skip
    torch.manual_seed(0)
    bert = transformers.BertModel(config)
    t = translate(bert, {"input_ids": torch.randint(0, config.vocab_size, (2, 8))})
    assert [s.module for s in t.measured] == [
        "embeddings.word_embeddings",
        "embeddings.token_type_embeddings",
        "embeddings.position_embeddings",
        "encoder.layer.0.attention",
        "encoder.layer.1.attention",
    ]
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
    enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    x = torch.randn(4, 6, 32)
    t = translate(enc, x)
    assert [s.module for s in t.measured] == ["layers.0.self_attn", "layers.1.self_attn"]
    m = measure(enc, x, n_inits=3)
    assert [s.name for s in m.sites] == [s.name for s in t.sites]
    i = m.index("measured2")  # (measured1 sees the raw input, which needs no gradient)
    # the gradient attention passes down (through it alone) is recorded for the theory below
    assert np.isfinite(m.log_grad_in[i]) and np.isnan(m.log_grad_in[m.index("dense1")])
    assert np.all(np.isfinite(m.log_q)) and np.all(np.isfinite(m.log_grad_q))
