"""gradmath for PyTorch models: measure, translate, explain (``pip install gradmath[torch]``).

- :func:`probe`: re-initialise a model n times and measure per-site second moments (a
  :class:`~gradmath.Profile` with Monte-Carlo standard errors); :func:`measure` gives every
  site, the theory's and the measured-only ones;
- :func:`from_module`: the gradmath network the mean-field theory takes; :func:`translate`
  shows how each layer was read and where theory stops; :func:`predict` is the mean-field
  prediction with the standard error that measured-only parts pass on;
- :func:`find_nonfinite` / :class:`NonFiniteWatch`: the first module whose output or gradient
  becomes inf/NaN;
- :class:`TrainingMonitor`: per-layer gradient norms and updates of a real training run, in a
  history that :func:`gradmath.diagnose` reads.
- :mod:`gradmath.torch.lightning` (imported on its own; needs ``lightning``): the same monitor as
  a Lightning callback.

Importing this subpackage imports torch; ``import gradmath`` never does.
"""

from __future__ import annotations

from gradmath.torch.convert import from_module as from_module
from gradmath.torch.convert import predict as predict
from gradmath.torch.convert import probe as probe
from gradmath.torch.measure import Measurement as Measurement
from gradmath.torch.measure import SiteInfo as SiteInfo
from gradmath.torch.measure import measure as measure
from gradmath.torch.monitor import TrainingHistory as TrainingHistory
from gradmath.torch.monitor import TrainingMonitor as TrainingMonitor
from gradmath.torch.nonfinite import NonFinite as NonFinite
from gradmath.torch.nonfinite import NonFiniteWatch as NonFiniteWatch
from gradmath.torch.nonfinite import find_nonfinite as find_nonfinite
from gradmath.torch.translate import Translation as Translation
from gradmath.torch.translate import translate as translate

__all__ = [
    "Measurement",
    "NonFinite",
    "NonFiniteWatch",
    "SiteInfo",
    "TrainingHistory",
    "TrainingMonitor",
    "Translation",
    "find_nonfinite",
    "from_module",
    "measure",
    "predict",
    "probe",
    "translate",
]
