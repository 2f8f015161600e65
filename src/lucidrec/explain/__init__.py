"""Reading models: GER attribute sets and exact per-attribute score contributions, with plots.

- ``attributes.py``: attribute sets per domain (TOML files under ``attributes/``, or your own).
- ``contributions.py``: per-attribute contributions to a user-item score and the faithfulness check.
- ``plot.py``: a user's attribute profile next to the recommended items' profiles (PNG).
"""
