"""Which parts of a PyTorch model are *sites*: the places gradmath measures and predicts.

A site is where a gradmath :class:`~gradmath.Profile` has a row: the output of a weight layer
(``nn.Linear``, Hugging Face's ``Conv1D``, ``nn.Conv1d``/``nn.Conv2d``), of a normalisation
(``nn.BatchNorm1d``/``2d``, ``nn.LayerNorm``), of a residual addition, and of a part the
theory does not cover (attention, embeddings, max-pooling, any module gradmath does not know
that holds parameters), which is *measured only*. Activations, dropout, flattening and
pooling are not sites: they change the moments between sites and are part of the translation.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = [
    "ADD_FUNCTIONS",
    "AVG_POOLS",
    "MEASURED_TYPES",
    "SiteKind",
    "is_attention",
    "site_kind",
    "weight_of",
]

SiteKind = Literal[
    "dense", "conv", "batchnorm", "layernorm", "residual", "avgpool", "maxpool", "measured"
]

#: torch.nn module types the mean-field theory does not cover: probed, never predicted.
MEASURED_TYPES: tuple[type[nn.Module], ...] = (
    nn.MultiheadAttention,
    nn.Embedding,
    nn.EmbeddingBag,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)

#: Torch functions and tensor methods that add two tensors: a residual join when both come
#: from the model's data flow.
ADD_FUNCTIONS = ("add", "__add__", "__radd__", "__iadd__", "add_")

#: Average pooling: a site of its own ("avgpool", gradmath.torch.ops).
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)

_KNOWN_PARAMETER_FREE = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _is_hf_conv1d(module: nn.Module) -> bool:
    # transformers.pytorch_utils.Conv1D (GPT-2): a linear layer with weight (fan_in, fan_out).
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def is_attention(module: nn.Module) -> bool:
    # Hugging Face names every self-attention block *Attention (GPT2Attention, BertAttention,
    # BertSelfAttention, ...); torch's is nn.MultiheadAttention.
    return isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith(
        ("Attention", "SelfAttention")
    )


def is_plain_maxpool(module: nn.Module) -> bool:
    """``nn.MaxPool1d/2d`` without dilation or ceil mode (gradmath's ``MaxPool``)."""
    if not isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
        return False
    d = module.dilation
    return (
        not module.ceil_mode
        and not module.return_indices
        and (d == 1 or (isinstance(d, tuple) and all(v == 1 for v in d)))
    )


def site_kind(module: nn.Module) -> SiteKind | None:
    """The kind of site a module's output is, or ``None`` if it is not a site by itself.

    >>> site_kind(nn.Linear(3, 4)), site_kind(nn.ReLU()), site_kind(nn.Embedding(9, 4))
    ('dense', None, 'measured')
    """
    if isinstance(module, nn.Linear) or _is_hf_conv1d(module):
        return "dense"
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        return "conv"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "batchnorm"
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    if is_plain_maxpool(module):
        return "maxpool"
    if isinstance(module, MEASURED_TYPES) or is_attention(module):
        return "measured"
    if not isinstance(module, _KNOWN_PARAMETER_FREE) and any(
        True for _ in module.parameters(recurse=False)
    ):
        return "measured"  # parameters of a kind gradmath has no rule for (e.g. an RMSNorm)
    return None


def weight_of(module: nn.Module) -> nn.Parameter | None:
    """The weight whose gradient a site reports (dense and conv sites), else ``None``."""
    if site_kind(module) in ("dense", "conv"):
        w = getattr(module, "weight", None)
        return w if isinstance(w, nn.Parameter) else None
    return None
