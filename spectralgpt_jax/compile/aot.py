"""Compile the project's train step for a named target from this CPU host (nothing runs).

  .venv-tpu/bin/python -m spectralgpt_jax.compile --target v5e-8 \
      --config configs/pretrain/spectralgpt_large.py:stage=2
  .venv-cuda12/bin/python -m spectralgpt_jax.compile --target h100 \
      --config configs/pretrain/spectralgpt_plus_base_128.py --json /tmp/base_h100.json

The program is the one training runs: `train.program.lower_train_step(config, mesh)`, which picks
implementations (CPU FFI kernels vs XLA) from the platform of the mesh's devices.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from typing import Any

from spectralgpt_jax.compile import report as report_lib
from spectralgpt_jax.compile import targets as targets_lib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN_PREFIX = "spectralgpt_"  # our CPU FFI custom calls: no TPU / GPU emitter exists


def load_config(spec: str) -> Any:
  """'configs/pretrain/x.py[:arg]' (path relative to the repo root or absolute) -> ConfigDict."""
  path, _, arg = spec.partition(".py:")
  path = path if path.endswith(".py") else path + ".py"
  file = pathlib.Path(path)
  if not file.is_absolute() and not file.exists():
    file = ROOT / file
  if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # configs import `configs.common`
  mod_spec = importlib.util.spec_from_file_location(f"_aot_config_{file.stem}", file)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def forbidden_custom_calls(rep: dict[str, Any]) -> dict[str, int]:
  """Our CPU-only custom calls found in the lowered or compiled program of a report."""
  found = {}
  for key in ("lowered_custom_calls", "custom_calls"):
    for name, n in rep.get(key, {}).items():
      if name.startswith(FORBIDDEN_PREFIX):
        found[name] = max(found.get(name, 0), n)
  return found


def lower_for_target(config: Any, target_name: str) -> tuple[Any, Any]:
  """(lowered train step, mesh) of `config` on the target's devices."""
  target = targets_lib.prepare(target_name)
  devices = targets_lib.target_devices(target.name)
  from spectralgpt_jax.sharding import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  try:
    from spectralgpt_jax.train import program  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise RuntimeError("spectralgpt_jax.train.program (lower_train_step) is not on this branch "
                       "yet: merge main") from e
  mesh = mesh_lib.make_mesh(config.mesh, devices)
  return program.lower_train_step(config, mesh), mesh


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
  return rep


def main(argv: list[str] | None = None) -> int:
  import argparse  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--target", required=True, choices=sorted(targets_lib.TARGETS))
  p.add_argument("--config", required=True, help="config file[:arg], as for `train --config`")
  p.add_argument("--batch", type=int, default=None, help="override the global batch size")
  p.add_argument("--json", default=None, help="write the report here")
  a = p.parse_args(argv)
  try:
    targets_lib.prepare(a.target)  # before jax is imported: the compiler's environment
  except targets_lib.MissingCompilerError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  config = load_config(a.config)
  if a.batch:
    config.batch_size = a.batch
  rep = compile_config(config, a.target)
  rep["config"] = a.config
  print(report_lib.summary_line(rep))
  if a.json:
    pathlib.Path(a.json).write_text(json.dumps(rep, indent=1))
  return 0
