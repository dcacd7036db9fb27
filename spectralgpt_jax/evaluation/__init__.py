"""The evaluation room: frozen-encoder and fine-tuning evaluators run from `config.evals`.

    from spectralgpt_jax.evaluation import run_evals
    metrics = run_evals(config, workdir)     # {"<name>/<metric>": float}

`config.evals = {name: {type: "linear" | "knn" | ..., **fields}}` (big_vision pattern); each
type is a class registered with `registry.register(type)` and built as `cls(**fields,
ctx=EvalContext)` (`registry.build`: unknown or missing fields are a TypeError naming the
block), whose `run()` returns a dict of floats. Modules: `registry`, `context`, `runner`,
`features` (cached frozen-encoder features), `base` (their evaluators' shared part), `linear`,
`knn`, `metrics`; `trained` (evaluators that train on the training machinery, then score):
`finetune`, and for the dense tasks `dense_eval` (type "dense": segmentation / change
detection), `dense_metrics`, `tiling`, `dense_outputs`; `multihost` (the collectives of
`evaluate --distributed`).
"""

from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.registry import get, register
from spectralgpt_jax.evaluation.runner import run_evals

__all__ = ["EvalContext", "get", "register", "run_evals"]
