"""`python -m spectralgpt_jax sweep --config configs/eval/<file>.py[:arg] --workdir DIR`.

Expands the config's `get_sweep(arg)` (lists of dotted overrides, configs/sweeps.py) into one
point directory each, `DIR/<slug of the overrides>-<hash>/`, and runs the points in turn in
this process (`evaluate`'s run_point). Finished points (result.json) are skipped on a rerun; a
point killed mid-way resumes. After every point DIR/results.csv (every metric), DIR/results.md
(one table per task: mean +- std over seeds with bootstrap 95% intervals over test examples),
DIR/results_all.md (every headline metric per point) and the PNG plots (task_intervals.png
among them) are rewritten (spectralgpt_jax/sweep/).
`--print_only` prints one `evaluate` launch line per point instead (for a cluster scheduler;
run `sweep --report_only` afterwards to rebuild the table and plots).
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from spectralgpt_jax.cli import _config, _failures, _flags

HELP = "run (or print) every point of a config's get_sweep(); results table and plots"
RENAMED_FLAGS = {"--print-only": "--print_only", "--report-only": "--report_only",
                 "--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax sweep --config configs/eval/tiny_sweep.py --workdir runs/demo/eval",
    "python -m spectralgpt_jax sweep --config configs/eval/checkpoint_sweep.py "
    "--workdir runs/ckpt_sweep --print_only",
)


def expand(config_spec: str) -> tuple[Any, list[dict[str, Any]], str, str | None]:
  """(module, points, path, arg) of 'file.py[:arg]'; a config without get_sweep is 1 point."""
  path, _, arg = config_spec.partition(":")
  module = _config.load_module(path)
  arg = arg or None
  pts = list(module.get_sweep(arg)) if hasattr(module, "get_sweep") else [{}]
  if not pts:
    raise ValueError(f"{path}: get_sweep({arg!r}) returned no points")
  return module, [dict(p) for p in pts], path, arg


def _flag_value(v: Any) -> str:
  if isinstance(v, (list, tuple)):
    return "(" + ",".join(_flag_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
  return repr(v) if isinstance(v, float) else str(v)


def launch_line(config_spec: str, point_dir: str, overrides: dict[str, Any]) -> str:
  args = ["python", "-m", "spectralgpt_jax", "evaluate", "--config", config_spec,
          "--workdir", point_dir]
  args += [f"--config.{k}={_flag_value(v)}" for k, v in overrides.items()]
  return " ".join(shlex.quote(a) for a in args)


def report(root: str, *, quiet: bool = False) -> tuple[list[str], list[str]]:
  """Rewrites the tables and plots of `root`; returns (table paths, plot paths)."""
  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.sweep import plots, points, table, task_tables
  # pylint: enable=g-import-not-at-top
  results = points.load_results(root)
  if not results:
    return [], []
  tasks = task_tables.all_rows(root, results)   # bootstrap intervals: computed once
  tables = list(table.write_tables(root, results, tasks))
  pngs = plots.write_plots(root, results, tasks)
  if not quiet:
    print(f"sweep: {len(results)} point(s) in {', '.join(tables)}, "
          f"{len(pngs)} plot(s)", flush=True)
  return tables, pngs


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("sweep", __doc__, EXAMPLES)
  p.add_argument("--config", required=True, help="config file with get_sweep()[:arg]")
  p.add_argument("--workdir", required=True, help="sweep directory (one folder per point)")
  p.add_argument("--print_only", action="store_true", help="print launch lines, run nothing")
  p.add_argument("--report_only", action="store_true",
                 help="only rebuild results.csv/.md and plots from finished points")
  p.add_argument("--overwrite", action="store_true",
                 help="rerun points that have result.json")
  _flags.add_allow_unverified(p)
  return p


@_failures.command("sweep")
def main(argv: list[str]) -> int:
  a = _flags.parse(build_parser(), argv)
  from spectralgpt_jax.sweep import points  # pylint: disable=g-import-not-at-top
  module, pts, path, arg = expand(a.config)
  dirs = [os.path.join(a.workdir, points.slug(o)) for o in pts]
  if len(set(dirs)) != len(dirs):
    raise ValueError(f"{path}: get_sweep returned duplicate points")
  if a.print_only:
    for d, o in zip(dirs, pts):
      print(launch_line(a.config, d, o))
    return 0
  if not a.report_only:
    from spectralgpt_jax.cli import evaluate, train  # pylint: disable=g-import-not-at-top
    train.setup_logging()
    for i, (d, o) in enumerate(zip(dirs, pts)):
      print(f"sweep: point {i + 1}/{len(pts)} {os.path.basename(d)}", flush=True)
      if points.is_done(d) and not a.overwrite:
        print(f"sweep: {d} done (result.json), skipping", flush=True)
        continue
      config = module.get_config(arg)
      config.lock()   # a misspelled override fails instead of adding a field
      config.update_from_flattened_dict(o)
      with _flags.checkpoint_reads(a):
        evaluate.run_point(config, o, d, force=a.overwrite)
      report(a.workdir, quiet=True)
  tables, pngs = report(a.workdir)
  if tables:
    from data_pipelines import storage  # pylint: disable=g-import-not-at-top
    print(storage.read_text(tables[1]))
    top = [x for x in pngs if os.path.dirname(x) == a.workdir.rstrip("/")]
    print("plots:\n" + "\n".join(f"  {x}" for x in top))
    if len(pngs) > len(top):
      print(f"  + {len(pngs) - len(top)} per-class / confusion plots in "
            f"{os.path.join(a.workdir, '<point>', '<eval>')}/")
  return 0

