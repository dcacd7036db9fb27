r"""`python -m spectralgpt_jax compile --config FILE[:arg] --target NAME [--config.x=y]`.

Compiles the train step of a config for a TPU slice or NVIDIA GPUs from this CPU host with the
real compiler (nothing runs) and prints: memory per device vs the device's, a verdict line
("fits" / "does not fit", with libtpu's own refusal text where it refuses), FLOPs per step from
the model and from the compiler, the collectives and the compile time. --plan searches remat
(none, dots, full) x accum_steps (1, 2, 4, ...) for the cheapest that fits with --headroom
free (compile/plan.py); --json writes the whole report; --serialize pickles the compiled
executable (serialize_executable). Needs the compiler in this venv: libtpu (`make setup-tpu`) or the CUDA plugin
(`make setup-cuda12`); targets: spectralgpt_jax/compile/targets.py.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from spectralgpt_jax.cli import _failures, _flags

HELP = "compile a config's train step for a TPU / GPU target from this host; --plan for memory"
EXAMPLES = (
    ".venv-tpu/bin/python -m spectralgpt_jax compile --config configs/pods/huge_v5e256.py "
    "--target v5e-256",
    ".venv-cuda12/bin/python -m spectralgpt_jax compile "
    "--config configs/pretrain/spectralgpt_large.py:stage=2 --target 8xh100 --plan",
)


def _target_name(name: str) -> str:
  """argparse type of --target: a known target (its compiler is checked later)."""
  from spectralgpt_jax.compile import targets  # pylint: disable=g-import-not-at-top
  try:
    return targets.get_target(name).name
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("compile", __doc__, EXAMPLES)
  _flags.add_config(p, "training config file (configs/pretrain, configs/pods)")
  p.add_argument("--target", required=True, type=_target_name,
                 help="compile target, e.g. v5e-256 or 8xh100 (compile/targets.py)")
  p.add_argument("--plan", action="store_true",
                 help="search remat x accum_steps for the cheapest that fits")
  p.add_argument("--headroom", type=float, default=0.10,
                 help="--plan: fraction of device memory left free")
  p.add_argument("--max_compiles", type=int, default=8,
                 help="--plan: stop after this many compiles")
  p.add_argument("--json", default=None, help="write the report here (default: not written)")
  p.add_argument("--serialize", default=None,
                 help="pickle the compiled executable here (default: not kept)")
  return p


def model_flops(config) -> dict:
  """Training FLOPs per step of the config's model (models/flops.py: matmuls, 3 x forward)."""
  from spectralgpt_jax.train import metrics, model_state  # pylint: disable=g-import-not-at-top
  spec = model_state.build_model(config.model).spec
  per_example = metrics.model_flops_per_example(spec, float(config.masking.ratio),
                                                 int(config.image_size))
  return {"per_example": per_example, "per_step": per_example * int(config.batch_size)}


def describe(rep: dict, target, model: dict) -> list[str]:
  """Human lines of a compile report."""
  from spectralgpt_jax.compile import report as report_lib  # pylint: disable=g-import-not-at-top
  mem = rep.get("memory", {})
  lines = [f"{rep.get('model')} batch {rep.get('batch')} on {target.name} "
           f"({target.num_devices} x {target.device_kind}), mesh {rep.get('mesh')}, "
           f"remat {rep.get('remat')}, accum_steps {rep.get('accum_steps')}, "
           f"dtype {rep.get('dtype')}"]
  if "total_gib" in mem:
    lines.append(f"memory per device: {mem['total_gib']:.2f} GiB of "
                 f"{mem['device_memory_gib']:.2f} GiB (arguments {mem['arguments'] / 2**30:.2f},"
                 f" temporaries {mem['temporaries'] / 2**30:.2f}, outputs "
                 f"{mem['outputs'] / 2**30:.2f}, aliased {mem['aliased'] / 2**30:.2f})")
  verdict = f"verdict: {rep.get('verdict')} ({rep.get('verdict_source', '')})"
  if rep.get("error"):
    verdict += "\n  compiler: " + rep["error"].strip().splitlines()[0][:600]
  lines.append(verdict)
  n = target.num_devices
  lines.append(f"FLOPs per step (model, matmuls): {model['per_step']:.4g} "
               f"({model['per_step'] / n:.4g} per device)")
  fl = rep.get("flops", {})
  if fl.get("available"):
    lines.append(f"FLOPs per device (compiler): {fl['flops']:.4g}; a scanned layer stack "
                 "(lax.scan) counts its body once, Pallas kernels count none")
  elif fl:
    lines.append(f"FLOPs (compiler): unavailable ({fl.get('reason')})")
  coll = rep.get("collectives", {})
  lines.append("collectives (HLO instructions): " +
               (", ".join(f"{k} {v}" for k, v in coll.items()) or "n/a"))
  calls = {k: v for k, v in rep.get("custom_calls", {}).items()}
  if calls:
    lines.append("custom calls: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))
  lines.append(f"compile: {rep.get('compile_s', 0):.1f} s (lowering {rep.get('lower_s', 0):.1f} s)"
               + (f"; executable -> {rep['serialized']}" if rep.get("serialized") else "")
               + (f"; not serialized: {rep['serialize_error']}" if rep.get("serialize_error")
                  else ""))
  lines.append(report_lib.summary_line(rep))
  return lines


@_failures.command("compile")
def main(argv: list[str]) -> int:
  fv = _flags.parse(build_parser(), argv)  # config files import no jax
  from spectralgpt_jax.compile import targets  # pylint: disable=g-import-not-at-top
  try:
    target = targets.prepare(fv.target)  # before jax initialises: the compiler's environment
  except targets.MissingCompilerError as e:  # this venv cannot compile for it: as a usage error
    raise _flags.UsageError(str(e)) from None
  from spectralgpt_jax.compile import aot, plan as plan_lib  # pylint: disable=g-import-not-at-top
  config = fv.config  # a run length left to the manifest: aot.with_run_length's stand-in
  model = model_flops(config)
  out: dict = {"target": target.name, "model_flops": model}
  if fv.plan:
    print(f"plan: {config.model.name}, global batch {config.batch_size}, {target.name}, "
          f"headroom {fv.headroom:.0%}")
    result = plan_lib.plan(config, target.name, headroom=fv.headroom,
                           max_compiles=fv.max_compiles)
    out["plan"] = {k: v for k, v in result.items() if k != "report"}
    rep = result["report"]
    choice = result["choice"]
    if choice is None:
      print(f"plan: nothing tried fits with {fv.headroom:.0%} headroom; tried "
            f"{len(result['tries'])} (raise --max_compiles, add devices or tensor parallelism)")
    else:
      print(f"plan: --config.model.remat={choice['remat']} "
            f"--config.optim.accum_steps={choice['accum_steps']}")
      if fv.serialize:  # the chosen program once more, this time kept
        config.model.remat, config.optim.accum_steps = choice["remat"], choice["accum_steps"]
        rep = aot.compile_config(config, target.name, serialize=fv.serialize)
  else:
    rep = aot.compile_config(config, target.name, serialize=fv.serialize)
  if rep is not None:
    rep["model_flops"] = model
    out.update(rep)
    print("\n".join(describe(rep, target, model)))
  if fv.json:
    pathlib.Path(fv.json).write_text(json.dumps(out, indent=1, default=str))
  return 0 if rep is not None and rep.get("verdict") == "fits" else 1
