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

Examples:
  python -m spectralgpt_jax evaluate --config configs/eval/eurosat_linear.py \
      --workdir runs/eval/eurosat --config.pretrained=runs/base96 \
      --config.data_root=/data/eurosat_shards
"""

from __future__ import annotations

import os
import sys
from typing import Any

from spectralgpt_jax.cli import _distributed

HELP = "evaluate an encoder (linear probe, k-NN, ...) from a config; see docs/evaluation.md"
RENAMED_FLAGS = {"--force": "--overwrite"}


def build_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "eval config file[:arg] (required); "
                                  "override fields with --config.field=value",
                                  flag_values=fv, lock_config=True)
  flags.DEFINE_string("workdir", None, "the point's directory: result.json, <eval>/... "
                      "(required)", flag_values=fv)
  flags.DEFINE_bool("overwrite", False, "run even if DIR/result.json exists", flag_values=fv)
  _distributed.define_flags(fv)
  return fv


def override_keys(argv: list[str]) -> list[str]:
  """Dotted keys given as `--config.a.b=v` / `--config.a.b v` on the command line."""
  keys = []
  for a in argv:
    if a.startswith("--config."):
      keys.append(a[len("--config."):].split("=", 1)[0])
  return keys


def get_dotted(config, key: str) -> Any:
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def run_point(config, overrides: dict[str, Any], workdir: str, *, force: bool = False,
              ) -> dict[str, Any] | None:
  """Runs one point into `workdir`; None when its result.json exists and not `force`."""
  import json  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.sweep import points  # pylint: disable=g-import-not-at-top
  if points.is_done(workdir) and not force:
    print(f"evaluate: {os.path.join(workdir, points.RESULT)} exists, skipping "
          "(--overwrite to rerun)", flush=True)
    return None
  os.makedirs(workdir, exist_ok=True)
  metrics = runner.run_evals(config, workdir)
  result = {"config": json.loads(config.to_json_best_effort()), "overrides": dict(overrides),
            "seed": int(config.get("seed", 0) or 0),
            "metrics": {k: float(v) for k, v in metrics.items()}}
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    points.atomic_write_json(os.path.join(workdir, points.RESULT), result)
  return result


def main(argv: list[str]) -> int:
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = build_flags()
  if any(a in ("-h", "--help", "-help") for a in argv):
    print(__doc__ + "\n" + fv.get_help())
    return 0
  try:
    fv(["evaluate"] + list(argv))
  except (flags.Error, AttributeError, KeyError, ValueError) as e:  # also misspelled fields
    print(f"evaluate: {e}\n\nusage: python -m spectralgpt_jax evaluate --config FILE[:ARG] "
          "--workdir DIR [--config.field=value ...] [--overwrite]", file=sys.stderr)
    return 2
  if fv.config is None or not fv.workdir:
    print("evaluate: --config and --workdir are required", file=sys.stderr)
    return 2
  from spectralgpt_jax.cli import train  # pylint: disable=g-import-not-at-top
  train.setup_logging()
  _distributed.initialize(fv)
  import jax  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.info("process %d/%d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  overrides = {k: get_dotted(fv.config, k) for k in override_keys(argv)}
  try:
    result = run_point(fv.config, overrides, fv.workdir, force=fv.overwrite)
  finally:
    _distributed.shutdown(fv)
  if result is not None:
    for k, v in sorted(result["metrics"].items()):
      print(f"{k}: {v:.6g}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
