"""lucidrec: LLM knowledge inside sequential recommenders, without giving up control.

The package is laid out along the data flow:
``data`` (datasets, filters, splits) -> ``models`` (backbones, baselines) + ``embeddings``
(item vector sources) -> ``train`` -> ``eval`` -> explanation heads; ``lm`` holds the shared
text-encoder and chat-model layer.
"""

__version__ = "0.1.0"
