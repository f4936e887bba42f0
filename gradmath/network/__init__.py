"""The network algebra: small frozen layers, each with its mean-field and its simulation rule.

Compose them with :class:`Serial` and :func:`repeat` and give the input width with
:class:`Network`; ``meanfield.predict`` and ``numeric.simulate`` fold over any such network.

>>> from gradmath.network import Network, Dense, Residual, LayerNorm, Serial, repeat
>>> block = Residual(Serial(LayerNorm(), Dense(64), "relu", Dense(64)), alpha=0.5)
>>> net = Network(32, Dense(64), repeat(block, 3), Dense(10))
>>> [s.name for s in net.sites][:5]
['dense1', 'layernorm1', 'dense2', 'dense3', 'residual1']
"""

from __future__ import annotations

from gradmath.network.base import Layer as Layer
from gradmath.network.base import Site as Site
from gradmath.network.batchnorm import BatchNorm as BatchNorm
from gradmath.network.blocks import fixup_block as fixup_block
from gradmath.network.blocks import post_ln_block as post_ln_block
from gradmath.network.blocks import pre_ln_block as pre_ln_block
from gradmath.network.combinators import Network as Network
from gradmath.network.combinators import Repeat as Repeat
from gradmath.network.combinators import Serial as Serial
from gradmath.network.combinators import as_layer as as_layer
from gradmath.network.combinators import repeat as repeat
from gradmath.network.conv import Conv as Conv
from gradmath.network.dense import Dense as Dense
from gradmath.network.elementwise import Elementwise as Elementwise
from gradmath.network.layernorm import LayerNorm as LayerNorm
from gradmath.network.maxpool import MaxPool as MaxPool
from gradmath.network.measured import Measured as Measured
from gradmath.network.pooling import AdaptiveAvgPool as AdaptiveAvgPool
from gradmath.network.pooling import AvgPool as AvgPool
from gradmath.network.pooling import Flatten as Flatten
from gradmath.network.pooling import GlobalAvgPool as GlobalAvgPool
from gradmath.network.residual import Residual as Residual
from gradmath.network.scale import Dropout as Dropout
from gradmath.network.scale import Scale as Scale

__all__ = [
    "AdaptiveAvgPool",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "Dense",
    "Dropout",
    "Elementwise",
    "Flatten",
    "GlobalAvgPool",
    "Layer",
    "LayerNorm",
    "MaxPool",
    "Measured",
    "Network",
    "Repeat",
    "Residual",
    "Scale",
    "Serial",
    "Site",
    "as_layer",
    "fixup_block",
    "post_ln_block",
    "pre_ln_block",
    "repeat",
]
