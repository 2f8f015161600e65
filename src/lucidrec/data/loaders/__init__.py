"""One module per source format. Each exposes ``detect(folder) -> bool`` and ``load(folder, name)``."""
