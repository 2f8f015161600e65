"""RecInterpreter (Yang et al., arXiv 2310.20487): a frozen LM reads a frozen recommender's states.

A trained run's hidden states go through a small trainable adapter (``adapter.py``) into soft
tokens of a frozen causal LM (``lucidrec.lm.soft_prompt``), which is trained, through the adapter
only, to say what a state encodes: the item appended between two states (``residual``) or the
last items of the sequence (``recovery``). Modules, one concern each:

- ``config``: the typed settings; ``templates``: paraphrased prompts (separate train and test sets);
- ``titles``: item titles, their normalisation and matching;
- ``examples``: the held-out user split, the training/evaluation examples and their states;
- ``adapter``: states -> soft tokens (the paper's Linear, or an MLP writing several tokens per state),
  optionally pooling the last positions; ``warmup``: its fit to title-token embeddings before the LM;
- ``training``: the adapter's training loop (resumable); ``probe``: the decoder-free baseline;
- ``evaluation``: generation, likelihood ranking, recovery counts and the controls;
- ``folder``: the adapter folder (what was trained on which run and LM) and its checks.
"""
