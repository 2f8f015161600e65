"""lucidrec: LLM knowledge inside sequential recommenders, without giving up control.

The package is laid out along the data flow, each layer importing only the ones under it:
``data`` (datasets, filters, splits) -> ``lm`` (text encoders, chat models) -> ``embeddings`` (item
vector sources, the state hook) -> ``models`` (backbones, baselines) -> ``eval`` -> ``train`` ->
``explain`` (explainers) -> ``methods`` (recipes of cached stages) -> ``cli`` (docs/architecture.md).
"""

__version__ = "0.1.0"
