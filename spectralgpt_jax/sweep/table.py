"""The results table of a sweep: one row per point, then mean +- std over seeds.

Rows come from the points' result.json ({"overrides", "seed", "metrics"}). Aggregation groups
points by their overrides without "seed" and reports, per metric, the mean, the sample
standard deviation (ddof=1; 0 for one seed) and the number of seeds with a finite value.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

from data_pipelines import atomic_io
from spectralgpt_jax.sweep import points as points_lib

SEED = "seed"


def override_keys(results: list[dict[str, Any]]) -> list[str]:
  """Override keys in first-seen order."""
  keys: list[str] = []
  for r in results:
    keys += [k for k in r.get("overrides", {}) if k not in keys]
  return keys


_NOT_HEADLINE = ("num_examples", "map_classes_skipped", "selected_on_val")


def metric_keys(results: list[dict[str, Any]], headline: bool = False) -> list[str]:
  """Every metric name; `headline`: only "<eval>/<metric>" (no per-class or per-L2 entries,
  no counts), what results.md shows (results.csv has them all)."""
  keys = sorted({k for r in results for k in r.get("metrics", {})})
  if headline:
    keys = [k for k in keys if k.count("/") == 1 and k.split("/")[1] not in _NOT_HEADLINE]
  return keys


def rows(results: list[dict[str, Any]], headline: bool = False,
         ) -> tuple[list[str], list[list[Any]]]:
  """(header, rows): point dir, each override, seed, each metric."""
  okeys = [k for k in override_keys(results) if k != SEED]
  mkeys = metric_keys(results, headline)
  header = ["point"] + okeys + [SEED] + mkeys
  out = []
  for r in results:
    ov = r.get("overrides", {})
    out.append([r.get("dir", "")] + [ov.get(k, "") for k in okeys] + [r.get(SEED, "")]
               + [r.get("metrics", {}).get(m, "") for m in mkeys])
  return header, out


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """[{"overrides": {...without seed}, "n": seeds, "metrics": {m: (mean, std, n_finite)}}]."""
  groups: dict[str, dict[str, Any]] = {}
  for r in results:
    ov = {k: v for k, v in r.get("overrides", {}).items() if k != SEED}
    g = groups.setdefault(points_lib.canonical(ov), {"overrides": ov, "seeds": [], "runs": []})
    g["seeds"].append(r.get(SEED))
    g["runs"].append(r.get("metrics", {}))
  out = []
  for g in groups.values():
    stats = {}
    for m in metric_keys([{"metrics": x} for x in g["runs"]]):
      vals = [x[m] for x in g["runs"] if points_lib.finite(x.get(m))]
      mean = sum(vals) / len(vals) if vals else math.nan
      std = (math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
             if len(vals) > 1 else (0.0 if vals else math.nan))
      stats[m] = (mean, std, len(vals))
    out.append({"overrides": g["overrides"], "n": len(g["runs"]), "seeds": g["seeds"],
                "metrics": stats})
  return out


def _fmt(v: Any) -> str:
  if isinstance(v, float):
    return "nan" if math.isnan(v) else f"{v:.4g}"
  if isinstance(v, str):   # full value (paths too); the slugs are the short forms
    return v.replace("|", "\\|") if v else "none"
  return points_lib.format_value(v)


def to_csv(results: list[dict[str, Any]]) -> str:
  header, body = rows(results)
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(header)
  w.writerows(body)
  return buf.getvalue()


def to_markdown(results: list[dict[str, Any]]) -> str:
  """Per-point table, then the mean +- std over seeds grouped by the other overrides
  (headline metrics; results.csv has every metric)."""
  header, body = rows(results, headline=True)
  lines = ["## Points", "", "| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in body]
  agg = aggregate(results)
  okeys = [k for k in override_keys(results) if k != SEED]
  mkeys = metric_keys(results, headline=True)
  lines += ["", "## Mean ± std over seeds", "",
            "| " + " | ".join(okeys + ["seeds"] + mkeys) + " |",
            "|" + "---|" * (len(okeys) + 1 + len(mkeys))]
  for g in agg:
    cells = [_fmt(g["overrides"].get(k, "")) for k in okeys] + [str(g["n"])]
    for m in mkeys:
      mean, std, n = g["metrics"].get(m, (math.nan, math.nan, 0))
      cells.append("nan" if not n else f"{mean:.4g} ± {std:.2g}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_tables(root: str, results: list[dict[str, Any]], tasks=None) -> tuple[str, str, str]:
  """Writes `<root>/results.csv` (every metric), `results.md` (one table per task with
  bootstrap intervals: `tasks` = task_tables.all_rows, computed when None) and
  `results_all.md` (every headline metric per point and over seeds), atomically; returns
  their paths."""
  from spectralgpt_jax.sweep import task_tables  # pylint: disable=g-import-not-at-top
  if tasks is None:
    tasks = task_tables.all_rows(root, results)
  paths = tuple(os.path.join(root, n) for n in ("results.csv", "results.md", "results_all.md"))
  texts = (to_csv(results), task_tables.to_markdown(tasks), to_markdown(results))
  for path, text in zip(paths, texts):
    atomic_io.atomic_write_bytes(path, text.encode())
  return paths
