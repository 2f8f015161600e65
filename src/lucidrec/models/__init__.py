"""Sequential backbones (one module each), training-free baselines, and the scoring protocol."""

from lucidrec.models.backbone import BACKBONES, Backbone, make_backbone

# Importing the modules registers them.
from lucidrec.models import bert4rec, caser, gru4rec, sasrec  # noqa: E402,F401

__all__ = ["BACKBONES", "Backbone", "make_backbone"]
