"""The evaluation room: frozen-encoder and fine-tuning evaluators run from `config.evals`.

    from spectralgpt_jax.evaluation import run_evals
    metrics = run_evals(config, workdir)     # {"<name>/<metric>": float}

`config.evals = {name: {type: "linear" | "knn" | ..., **fields}}` (big_vision pattern); each
type is a class registered with `registry.register(type)` and built as `cls(cfg, ctx)` with an
`EvalContext`, whose `run()` returns a dict of floats. Modules: `registry`, `context`,
`runner`, `features` (cached frozen-encoder features), `linear`, `knn`, `metrics`; for the
dense tasks `dense_eval` (type "dense": segmentation / change detection trained on the training
machinery), `dense_metrics`, `tiling`, `dense_outputs`.
"""

from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.registry import get, register
from spectralgpt_jax.evaluation.runner import run_evals

__all__ = ["EvalContext", "get", "register", "run_evals"]
