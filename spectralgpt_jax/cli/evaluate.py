r"""`python -m spectralgpt_jax evaluate --config configs/eval/<file>.py[:arg] --workdir DIR`.

Runs every evaluator of `config.evals` (spectralgpt_jax.evaluation.runner.run_evals) for one
point and writes `DIR/result.json` atomically: {"config", "overrides", "seed", "metrics"}.
Overrides: `--config.pretrained=runs/demo/run --config.seed=1 --config.evals.flood_knn.k=5`
(locked config: a typo fails). A point whose result.json exists is skipped unless
--overwrite; a point killed mid-way resumes, its evaluators reusing their own state and
feature caches. `sweep --print_only` prints one such line per point for a cluster scheduler.
Multi-host: pass --distributed (as `train`) on every process; each reads its share of every
split's shards, features are gathered to every process (rows sorted by example id), the
metrics are the same as one process's, and process 0 writes the outputs.

Two commands on one point directory: the second stops at once, naming the first.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from spectralgpt_jax.cli import _distributed, _failures, _flags, _workdir_lock

HELP = "evaluate an encoder (linear probe, k-NN, ...) from a config; see docs/evaluation.md"
RENAMED_FLAGS = {"--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax evaluate --config configs/eval/eurosat_linear.py "
    "--workdir runs/eval/eurosat --config.pretrained=runs/base96 "
    "--config.data_root=/data/eurosat_shards",
)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("evaluate", __doc__, EXAMPLES)
  _flags.add_config(p, "eval config file (configs/eval)")
  p.add_argument("--workdir", required=True,
                 help="the point's directory: result.json, <eval>/...")
  p.add_argument("--overwrite", action="store_true", help="run even if DIR/result.json exists")
  _flags.add_allow_unverified(p)
  _distributed.add_flags(p)
  return p


def run_point(config, overrides: dict[str, Any], workdir: str, *, force: bool = False,
              ) -> dict[str, Any] | None:
  """Runs one point into `workdir`; None when its result.json exists and not `force`."""
  import json  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.sweep import points  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  with _workdir_lock.held(workdir, "evaluate", enabled=jax.process_index() == 0):
    if points.is_done(workdir) and not force:
      print(f"evaluate: {os.path.join(workdir, points.RESULT)} exists, skipping "
            "(--overwrite to rerun)", flush=True)
      return None
    metrics = runner.run_evals(config, workdir)
    result = {"config": json.loads(config.to_json_best_effort()), "overrides": dict(overrides),
              "seed": int(config.get("seed", 0) or 0),
              "metrics": {k: float(v) for k, v in metrics.items()}}
    if jax.process_index() == 0:
      points.atomic_write_json(os.path.join(workdir, points.RESULT), result)
  return result


@_failures.command("evaluate")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from spectralgpt_jax.cli import train  # pylint: disable=g-import-not-at-top
  train.setup_logging()
  _distributed.initialize(args)
  import jax  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.info("process %d/%d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  try:
    with _flags.checkpoint_reads(args):
      result = run_point(args.config, args.overrides, args.workdir, force=args.overwrite)
  finally:
    _distributed.shutdown(args)
  if result is not None:
    for k, v in sorted(result["metrics"].items()):
      print(f"{k}: {v:.6g}")
  return 0
