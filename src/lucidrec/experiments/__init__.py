"""Experiments: a grid file (datasets x models x embeddings x variants x seeds) -> run folders -> compact
result records -> a report. ``grid`` reads and checks the file, ``runner`` runs the cells, ``records``
writes and reads the per-cell records, ``aggregate`` and ``report`` turn records into tables and plots."""
