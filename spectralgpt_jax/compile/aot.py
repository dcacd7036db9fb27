"""Compile the project's train step for a named target from this CPU host (nothing runs).

The command is `python -m spectralgpt_jax compile` (cli/compile.py). The program is the one
training runs: `train.program.lower_train_step(config, mesh)`, which picks implementations
(CPU FFI kernels vs XLA) from the platform of the mesh's devices.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any

from absl import logging

from spectralgpt_jax.compile import report as report_lib
from spectralgpt_jax.compile import targets as targets_lib

FORBIDDEN_PREFIX = "spectralgpt_"  # our CPU FFI custom calls: no TPU / GPU emitter exists
# The schedule length compiled when a config leaves the run's length to the shard manifest
# (num_examples None -> total_steps None): a constant of the learning-rate schedule, it changes
# neither the program's memory nor its FLOPs.
STAND_IN_TOTAL_STEPS = 1000


def forbidden_custom_calls(rep: dict[str, Any]) -> dict[str, int]:
  """Our CPU-only custom calls found in the lowered or compiled program of a report."""
  found = {}
  for key in ("lowered_custom_calls", "custom_calls"):
    for name, n in rep.get(key, {}).items():
      if name.startswith(FORBIDDEN_PREFIX):
        found[name] = max(found.get(name, 0), n)
  return found


def with_run_length(config: Any) -> Any:
  """`config` if it fixes total_steps, else a copy with total_steps = STAND_IN_TOTAL_STEPS
  (the caller's config is untouched; warmup follows it as in training)."""
  if config.get("total_steps") is not None:
    return config
  logging.warning("config.total_steps is unset (num_examples is read from the shard manifest "
                  "when training starts): compiling with the stand-in total_steps=%d, which "
                  "changes neither memory nor FLOPs", STAND_IN_TOTAL_STEPS)
  config = copy.deepcopy(config)
  config.total_steps = STAND_IN_TOTAL_STEPS
  return config


def lower_with_devices(config: Any, devices: list[Any]) -> tuple[Any, Any]:
  """(lowered train step, mesh) of `config` on `devices` (the run length from with_run_length)."""
  from spectralgpt_jax.sharding import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import program  # pylint: disable=g-import-not-at-top
  config = with_run_length(config)
  mesh = mesh_lib.make_mesh(config.mesh, devices)
  return program.lower_train_step(config, mesh), mesh


def lower_for_target(config: Any, target_name: str) -> tuple[Any, Any]:
  """(lowered train step, mesh) of `config` on the target's devices."""
  target = targets_lib.prepare(target_name)
  return lower_with_devices(config, targets_lib.target_devices(target.name))


def serializer(path: str):
  """`then` for compile_and_report: pickles (executable bytes, in_tree, out_tree) to `path`,
  what `jax.experimental.serialize_executable.deserialize_and_load` takes on the target."""
  def then(compiled) -> dict[str, Any]:
    import pickle  # pylint: disable=g-import-not-at-top
    from jax.experimental import serialize_executable  # pylint: disable=g-import-not-at-top
    try:
      payload = serialize_executable.serialize(compiled)
      pathlib.Path(path).write_bytes(pickle.dumps(payload))
    except Exception as e:  # a backend that cannot serialize: say so, keep the report
      return {"serialized": None, "serialize_error": f"{type(e).__name__}: {e}"}
    return {"serialized": path, "serialized_bytes": len(payload[0])}
  return then


def compile_config(config: Any, target_name: str, serialize: str | None = None
                   ) -> dict[str, Any]:
  """Lowers and compiles the train step of `config` for the target; the report of the compile
  (with the executable pickled to `serialize` if given)."""
  import time  # pylint: disable=g-import-not-at-top
  target = targets_lib.prepare(target_name)
  config = with_run_length(config)
  t0 = time.perf_counter()
  lowered, mesh = lower_for_target(config, target_name)
  lower_s = time.perf_counter() - t0
  lowered_calls = report_lib.custom_calls(lowered.as_text())
  bad = {k: v for k, v in lowered_calls.items() if k.startswith(FORBIDDEN_PREFIX)}
  if bad:
    raise RuntimeError(f"the {target.platform} program still calls CPU-only kernels {bad}: "
                       "implementations must follow the mesh's platform")
  rep = report_lib.compile_and_report(lowered, target,
                                      then=serializer(serialize) if serialize else None)
  rep["lowered_custom_calls"] = lowered_calls
  rep["lower_s"] = lower_s
  rep["mesh"] = dict(mesh.shape)
  rep["model"] = config.model.name
  rep["batch"] = int(config.batch_size)
  rep["image_size"] = int(config.image_size)
  rep["mask_ratio"] = float(config.masking.ratio)
  rep["remat"] = str(config.model.remat)
  rep["dtype"] = str(config.model.dtype)
  rep["accum_steps"] = int(config.optim.accum_steps)
  rep["total_steps"] = int(config.total_steps)
  return rep
