"""Experiment configs (ml_collections): one `get_config(arg)` per file, grouped by stage.

`configs/pretrain/*.py` are launched with
  python -m spectralgpt_jax train --config configs/pretrain/<file>.py[:arg] --workdir DIR
and overridden with `--config.<field>=<value>` (configs are locked, so a typo fails).
"""
