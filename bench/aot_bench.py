"""AOT compile benchmark: the pretraining train step compiled for a TPU slice and an H100.

Compiles (nothing runs) the unchanged base / large / huge pretraining configs with the real
TPU (libtpu) and GPU (XLA:GPU via the CUDA plugin) compilers from this CPU host, and appends a
table (model, target, batch, per-device memory, fits, compile time) to BENCHMARKS.md.

  make bench-aot   # = .venv-tpu/bin/python bench/aot_bench.py --targets v5e-8,h100 \\
                  #       --per-device-batch 16 --out BENCHMARKS.md
  .venv-tpu/bin/python bench/aot_bench.py --targets v5e-8 --models base --json /tmp/aot.json
  .venv/bin/python bench/aot_bench.py --quick   # smoke run: the tiny model for v5e-4 and / or
                                                # h100, whichever compiler venv exists

Each compile runs alone in a child process (`python -m spectralgpt_jax compile`) of the venv
that has its compiler (.venv-tpu for TPU targets, .venv-cuda12 for GPU ones), one at a time:
compiles are CPU-heavy and the huge model's takes minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from timing import QUICK_HELP, cpu_name, quick_out  # bench/ is on sys.path as a script

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectralgpt_jax.compile import targets as targets_lib  # noqa: E402  (imports no jax)

MODELS = {
    "base": "configs/pretrain/spectralgpt_plus_base_128.py",
    "large": "configs/pretrain/spectralgpt_large.py:stage=2",
    "huge": "configs/pretrain/spectralgpt_huge.py:stage=2",
    "tiny": "configs/pretrain/tiny_s2.py",
}
VENVS = {"tpu": ".venv-tpu", "cuda": ".venv-cuda12"}
QUICK_TARGETS = ("v5e-4", "h100")


def compiler_python(target: targets_lib.Target) -> pathlib.Path:
  """The python of the venv with the target's compiler (it may not exist)."""
  return ROOT / VENVS[target.platform] / "bin" / "python"


def _compile_one(python: str, target: str, config: str, timeout: float,
                 batch: int | None = None) -> dict:
  """Report of one compile in a child process, or {"verdict": "error", ...}."""
  with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp) / "report.json"
    cmd = [python, "-m", "spectralgpt_jax", "compile", "--target", target, "--config", config,
           "--json", str(out)] + ([f"--config.batch_size={batch}"] if batch else [])
    t0 = time.perf_counter()
    try:
      proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
      return {"target": target, "config": config, "verdict": "error",
              "error": f"no result within {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not out.exists():  # 1: compiled, does not fit
      tail = [l for l in proc.stderr.splitlines() if l.strip()][-3:]
      return {"target": target, "config": config, "verdict": "error", "wall_s": wall,
              "error": " | ".join(tail)[-600:]}
    rep = json.loads(out.read_text())
    rep["wall_s"] = wall
    return rep


def _gib(x) -> str:
  return "-" if x is None else f"{x / (1 << 30):.2f}"


def _row(rep: dict) -> str:
  t = targets_lib.get_target(rep["target"])
  batch = rep.get("batch")
  per_dev = f"{batch} ({batch // t.num_devices}/dev)" if batch else "-"
  mem = rep.get("memory", {})
  if rep.get("verdict") == "error":
    return (f"| {rep['config']} | {t.name} | - | - | - | error: "
            f"{rep.get('error', '')[:200].replace('|', '/')} | - | - | - |")
  if mem.get("available"):
    used = (f"{_gib(mem['total'])} (args {_gib(mem['arguments'])}, temps "
            f"{_gib(mem['temporaries'])})")
  elif "refused_need_gib" in mem:
    used = f"temps > {mem['refused_need_gib']:.2f} (refused)"
  else:
    used = "-"
  fits = {"fits": "yes", "does not fit": "**no**"}.get(rep.get("verdict"), rep.get("verdict"))
  flops = rep.get("flops", {})
  tf = f"{flops['flops'] / 1e12:.1f}" if flops.get("available") else "n/a"
  coll = rep.get("collectives", {})
  cstr = "/".join(str(coll.get(k, 0)) for k in ("all-gather", "reduce-scatter", "all-reduce",
                                                 "collective-permute"))
  return (f"| {rep.get('model', rep['config'])} | {t.name} ({t.num_devices}x {t.device_kind}) | "
          f"{per_dev} | {used} | {_gib(t.memory_bytes)} | {fits} | "
          f"{rep.get('compile_s', 0):.0f} (lower {rep.get('lower_s', 0):.0f}) | {tf} | "
          f"{cstr if coll else '-'} |")


def _markdown(reports: list[dict], cmd: str) -> str:
  lines = [
      f"\n### AOT compile of the pretraining train step for TPU / GPU targets "
      f"({datetime.date.today()})\n",
      f"Machine: {cpu_name()}, {os.cpu_count()} CPU cores, "
      f"no accelerator (deviceless compiles: libtpu 0.0.42.1, jax-cuda12-plugin 0.10.2). "
      f"Command: `{cmd}`. Unchanged configs (global batch 4096, mesh fsdp=-1; rows with a "
      f"smaller batch override only config.batch_size); memory is per "
      f"device from `compiled.memory_analysis()` (arguments + outputs - donated + temporaries + "
      f"code); TPU fit is libtpu's own verdict (it refuses over-budget programs: then only its "
      f"temporaries figure is known), GPU fit is compared here (XLA:GPU does not refuse). "
      f"TFLOP/dev: cost_analysis per device, which counts a scanned layer stack's body once "
      f"(huge scans its layers); XLA:GPU gives none. Collectives: all-gather / reduce-scatter / "
      f"all-reduce / collective-permute instructions in the compiled HLO (a loop body counts once; "
      f"libtpu's collective fusions included). Device GiB: usable HBM per TPU chip as libtpu "
      f"reports it, the full HBM of a GPU.\n",
      "| model | target | global batch | per-device memory GiB | device GiB | fits | "
      "compile s | TFLOP/dev | AG/RS/AR/CP |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  lines += [_row(r) for r in reports]
  return "\n".join(lines) + "\n"


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--targets", default="v5e-8,h100", help="comma-separated names (compile/targets)")
  p.add_argument("--models", default="base,large,huge", help=f"subset of {','.join(MODELS)}")
  p.add_argument("--per-device-batch", default="",
                 help="also compile with these per-device batches (comma-separated), e.g. 16")
  p.add_argument("--timeout", type=float, default=1500, help="seconds per compile")
  p.add_argument("--out", default=None, help="markdown file to append the table to")
  p.add_argument("--json", default=None, help="write all reports here")
  p.add_argument("--quick", action="store_true", help=QUICK_HELP)
  a = p.parse_args()
  if a.quick:
    found = [t for t in QUICK_TARGETS
             if compiler_python(targets_lib.get_target(t)).exists()]
    if not found:
      print("aot_bench --quick: no compiler venv (`make setup-tpu` or `make setup-cuda12`); "
            "nothing compiled", file=sys.stderr)
      return 2
    a.targets, a.models, a.per_device_batch, a.out = ",".join(found), "tiny", "", quick_out(
        "aot_bench")
  reports = []
  for name in a.targets.split(","):
    target = targets_lib.get_target(name)
    python = str(compiler_python(target))
    if not os.path.exists(python):
      print(f"error: {python} missing: `make setup-{target.extra}`", file=sys.stderr)
      return 2
    batches = [None] + [int(b) * target.num_devices for b in a.per_device_batch.split(",") if b]
    for model in a.models.split(","):
      for batch in batches:  # None: the config's own global batch
        rep = _compile_one(python, name, MODELS[model], a.timeout, batch)
        rep.setdefault("config", MODELS[model])
        reports.append(rep)
        print(_row(rep), flush=True)
  cmd = " ".join([os.path.relpath(sys.executable, ROOT), "bench/aot_bench.py", *sys.argv[1:]])
  if a.json:
    pathlib.Path(a.json).write_text(json.dumps(reports, indent=1))
  if a.out:
    with open(a.out, "a") as f:
      f.write(_markdown(reports, cmd))
  return 0


if __name__ == "__main__":
  sys.exit(main())
