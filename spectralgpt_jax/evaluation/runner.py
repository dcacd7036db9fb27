"""`run_evals(config, workdir)`: every evaluator of `config.evals`, metrics flattened.

Top-level config fields read:
  seed (int, default 0); pretrained (str: orbax dir or weights file, "" = random init);
  model (str variant name, or a model record with "name"; needed when pretrained is "");
  cache_dir (str, "" = `<workdir>/../feature_cache`, shared by sibling sweep points);
  evals ({name: {type: ..., ...}}).
Evaluator `name` writes into `<workdir>/<name>/` (its ctx.workdir); all metrics also go to
`<workdir>/metrics.json` as {"<name>/<metric>": float}.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import ml_collections
from absl import logging

from spectralgpt_jax.evaluation import registry
from data_pipelines import storage
from data_pipelines.atomic_io import atomic_write
from spectralgpt_jax.evaluation.context import EvalContext


def _model_name(model) -> str:
  if model is None:
    return ""
  if isinstance(model, str):
    return model
  return str(model.get("name", "") or "")


def _absolute(path: str) -> str:
  """A local path made absolute; a URL (gs://, s3://: data_pipelines.storage) as given."""
  return path if storage.is_url(path) else os.path.abspath(os.path.expanduser(path))


def make_context(config: ml_collections.ConfigDict, workdir: str) -> EvalContext:
  """The run's context (workdir = the run's; run_evals gives each evaluator its subfolder)."""
  workdir = _absolute(workdir)
  cache_dir = str(config.get("cache_dir", "") or "") or os.path.join(
      os.path.dirname(workdir.rstrip("/")), "feature_cache")
  return EvalContext(workdir=workdir, seed=int(config.get("seed", 0) or 0),
                     pretrained=str(config.get("pretrained", "") or ""),
                     model=_model_name(config.get("model", None)),
                     cache_dir=_absolute(cache_dir))


def run_evals(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Runs `config.evals` in order; returns {"<name>/<metric>": float}."""
  base = make_context(config, workdir)
  out: dict[str, float] = {}
  for name, block in config.evals.items():
    ctx = dataclasses.replace(base, workdir=os.path.join(base.workdir, name))
    evaluator = registry.build(name, block, ctx)
    logging.info("evaluator %s (%s) -> %s", name, block["type"], ctx.workdir)
    metrics = evaluator.run()
    out.update({f"{name}/{k}": float(v) for k, v in metrics.items()})
  if jax.process_index() == 0:
    atomic_write(os.path.join(base.workdir, "metrics.json"),
                 lambda f: f.write(json.dumps(out, indent=1, sort_keys=True).encode()))
  return out
