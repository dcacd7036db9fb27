"""Memory plan: the cheapest remat policy x gradient accumulation whose train step fits a target.

For the config's global batch, candidates (remat none | dots | full) x (accum_steps 1, 2, 4, ...
while each microbatch still gives every data x fsdp device at least one example) are ordered by
an estimated step cost and compiled in that order; the first whose per-device memory leaves
`headroom` of the device free is the plan (TPU: libtpu's refusal also means "does not fit").
Compiling in cost order means the plan usually costs a few compiles, not the whole grid.

Estimated cost (relative step time; a heuristic, not a measurement): remat none 1.0, dots 1.15
(recomputes the elementwise work between matmuls), full 1.33 (a second forward: +1/3 of the
3x-forward step); each doubling of accum_steps +5% (smaller per-device matmuls, more loop
overhead). Same FLOPs otherwise: accumulation does not change the maths of the step.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

from spectralgpt_jax.compile import aot, report as report_lib, targets as targets_lib

REMAT_COST = {"none": 1.0, "dots": 1.15, "full": 1.33}
ACCUM_COST_PER_DOUBLING = 0.05
HEADROOM = 0.10


def candidates(batch: int, batch_split: int, remats=tuple(REMAT_COST)) -> list[dict[str, Any]]:
  """(remat, accum_steps, cost) in increasing estimated cost; microbatch >= 1 per device."""
  out, accum = [], 1
  while batch % (batch_split * accum) == 0:
    for r in remats:
      cost = REMAT_COST[r] * (1 + ACCUM_COST_PER_DOUBLING * math.log2(accum))
      out.append({"remat": r, "accum_steps": accum, "cost": round(cost, 4)})
    accum *= 2
  return sorted(out, key=lambda c: (c["cost"], c["accum_steps"]))


def fits_with_headroom(rep: dict[str, Any], memory_bytes: int, headroom: float) -> bool:
  mem = rep.get("memory", {})
  if not rep.get("compiled") or "total" not in mem:
    return False
  return mem["total"] <= (1.0 - headroom) * memory_bytes


def plan(config: Any, target_name: str, *, headroom: float = HEADROOM, max_compiles: int = 8,
         compile_fn: Callable[[Any, str], dict[str, Any]] = aot.compile_config,
         log: Callable[[str], None] = print) -> dict[str, Any]:
  """Compiles candidates of `config` on the target in cost order until one fits with headroom.

  Returns {"choice": {remat, accum_steps, cost} | None, "tries": [...], "headroom", ...}; the
  report of the chosen compile is under "report".
  """
  from spectralgpt_jax.sharding import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  target = targets_lib.get_target(target_name)
  sizes = mesh_lib.resolve_shape(config.mesh, target.num_devices)
  split = sizes[0] * sizes[1]  # data x fsdp
  tries, choice, chosen_rep = [], None, None
  for cand in candidates(int(config.batch_size), split):
    if len(tries) >= max_compiles:
      break
    c = copy.deepcopy(config)
    c.model.remat = cand["remat"]
    c.optim.accum_steps = cand["accum_steps"]
    rep = compile_fn(c, target_name)
    ok = fits_with_headroom(rep, target.memory_bytes, headroom)
    mem = rep.get("memory", {})
    tries.append({**cand, "fits_with_headroom": ok, "verdict": rep.get("verdict"),
                  "total_gib": mem.get("total_gib", mem.get("refused_need_gib")),
                  "compile_s": rep.get("compile_s")})
    log(f"  remat={cand['remat']:<5} accum_steps={cand['accum_steps']:<3} "
        f"{report_lib.summary_line(rep)}" + (" <- plan" if ok else ""))
    if ok:
      choice, chosen_rep = cand, rep
      break
  return {"target": target_name, "batch": int(config.batch_size), "batch_split": split,
          "headroom": headroom, "choice": choice, "tries": tries, "report": chosen_rep}
