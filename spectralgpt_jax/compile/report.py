"""What a deviceless compile says about a program: memory per device, fit, FLOPs, collectives.

`compile_and_report(lowered, target)` compiles and returns a JSON-able dict; a compile that
libtpu refuses for lack of memory (RESOURCE_EXHAUSTED) becomes the verdict "does not fit" with
the compiler's own text, any other failure is raised.
"""

from __future__ import annotations

import collections
import re
import time
from typing import Any, Callable

from spectralgpt_jax.compile.targets import GIB, Target

# Collective opcodes as they appear in optimized HLO text; async pairs count once (at -start).
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_OP = re.compile(r"\s(all-gather|reduce-scatter|all-reduce|all-to-all|collective-permute)"
                 r"(-start)?\(")
# libtpu also emits collectives as fusions (e.g. reduce-scatter as `fusion(...), kind=kCustom,
# calls=%all-reduce-scatter`), not as the plain opcode.
_FUSED = re.compile(r"kind=kCustom, calls=%(all-reduce-scatter|reduce-scatter|all-gather|"
                    r"all-reduce|all-to-all|collective-permute)[\w.-]*")
_FUSED_AS = {"all-reduce-scatter": "reduce-scatter"}
# HLO text: custom_call_target="name"; StableHLO (a Lowered's text): custom_call @name or
# custom_call @"name" (quoted when it holds $, as cuDNN's __cudnn$fmha... do).
_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"|custom_call @(?:"([^"]+)"|([\w.$-]+))')
_ERROR_CHARS = 4000


def memory(compiled: Any, target: Target | None = None) -> dict[str, Any]:
  """Per-device bytes from the compiler: arguments, outputs, temporaries, code, total; fit."""
  m = compiled.memory_analysis()
  if m is None:
    return {"available": False}
  out = {
      "arguments": int(m.argument_size_in_bytes),
      "outputs": int(m.output_size_in_bytes),
      "aliased": int(m.alias_size_in_bytes),   # donated inputs reused as outputs
      "temporaries": int(m.temp_size_in_bytes),
      "generated_code": int(m.generated_code_size_in_bytes),
  }
  out["total"] = (out["arguments"] + out["outputs"] - out["aliased"] + out["temporaries"]
                  + out["generated_code"])
  out["total_gib"] = out["total"] / GIB
  if target is not None:
    out["device_memory"] = target.memory_bytes
    out["device_memory_gib"] = target.memory_bytes / GIB
    out["fits"] = out["total"] <= target.memory_bytes
  out["available"] = True
  return out


def flops(compiled: Any) -> dict[str, Any]:
  """FLOPs per device from cost_analysis (TPU; None on XLA:GPU). A lax.scan body counts once."""
  try:
    cost = compiled.cost_analysis()
  except Exception as e:  # some backends raise instead of returning None
    return {"available": False, "reason": f"{type(e).__name__}: {e}"}
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    return {"available": False, "reason": "the compiler gives no cost analysis"}
  return {"available": True, "flops": float(cost["flops"]),
          "bytes_accessed": float(cost.get("bytes accessed", 0.0)),
          "note": "per device; a scanned layer stack (lax.scan) counts its body once"}


def collectives(hlo_text: str) -> dict[str, int]:
  """Counts of each collective in optimized HLO text: instructions, not executions (a loop body
  counts once); async start/done pairs count once; libtpu's collective fusions count too."""
  counts = collections.Counter(m.group(1) for m in _OP.finditer(hlo_text))
  counts.update(_FUSED_AS.get(m.group(1), m.group(1)) for m in _FUSED.finditer(hlo_text))
  return {c: counts.get(c, 0) for c in COLLECTIVES}


def custom_calls(hlo_text: str) -> dict[str, int]:
  """custom_call_target -> count in HLO text (e.g. a CPU FFI kernel that must not be there)."""
  return dict(collections.Counter(next(g for g in m if g)
                                  for m in _CUSTOM_CALL.findall(hlo_text)))


def _resource_exhausted(err: BaseException) -> bool:
  text = f"{type(err).__name__}: {err}"
  return "RESOURCE_EXHAUSTED" in text or "ResourceExhausted" in text


def report(compiled: Any, target: Target | None = None, lowered: Any = None,
           compile_s: float | None = None) -> dict[str, Any]:
  """JSON-able report of a compiled program (and the lowered one it came from)."""
  hlo = compiled.as_text() or ""
  out: dict[str, Any] = {
      "target": None if target is None else target.name,
      "platform": None if target is None else target.platform,
      "num_devices": None if target is None else target.num_devices,
      "compiled": True,
      "compile_s": compile_s,
      "memory": memory(compiled, target),
      "flops": flops(compiled),
      "collectives": collectives(hlo),
      "custom_calls": custom_calls(hlo),
  }
  mem = out["memory"]
  out["fits"] = mem.get("fits")
  out["verdict"] = ("fits" if mem.get("fits") else "does not fit") if "fits" in mem else "unknown"
  if target is not None and target.platform == "cuda" and mem.get("fits") is False:
    out["verdict_source"] = "compared here (XLA:GPU does not refuse a program that does not fit)"
  elif target is not None:
    out["verdict_source"] = "memory_analysis vs the target's memory"
  if lowered is not None:
    out["lowered_custom_calls"] = custom_calls(lowered.as_text())
  return out


def compile_and_report(lowered: Any, target: Target | None = None,
                       then: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
  """Compiles `lowered`, timing it; RESOURCE_EXHAUSTED -> {"verdict": "does not fit", "error"}.

  `then(compiled)`, if given, runs on a successful compile (e.g. serializing the executable);
  the dict it returns is merged into the report.
  """
  t0 = time.perf_counter()
  try:
    compiled = lowered.compile()
  except Exception as e:  # libtpu refuses an over-budget program at compile time
    if not _resource_exhausted(e):
      raise
    secs = time.perf_counter() - t0
    text = str(e)
    return {"target": None if target is None else target.name,
            "platform": None if target is None else target.platform,
            "num_devices": None if target is None else target.num_devices,
            "compiled": False, "compile_s": secs, "fits": False, "verdict": "does not fit",
            "verdict_source": "the compiler refused it (RESOURCE_EXHAUSTED)",
            "error": text[:_ERROR_CHARS] + ("..." if len(text) > _ERROR_CHARS else ""),
            "memory": {"available": False, **_refusal_numbers(text)}}
  out = report(compiled, target, lowered, time.perf_counter() - t0)
  if then is not None:
    out.update(then(compiled))
  return out


# libtpu: "...HLO temporaries (54.77G) exceeds available HBM (15.75G)" (also "16.59G > 15.75G").
_REFUSAL = re.compile(r"([\d.]+)([KMGT])\)?\s*(?:exceeds available HBM \(|>\s*)([\d.]+)([KMGT])")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _refusal_numbers(text: str) -> dict[str, Any]:
  """Required vs available bytes from libtpu's refusal text (libtpu's G = GiB), where it has them."""
  m = _REFUSAL.search(text)
  if not m:
    return {}
  need = float(m.group(1)) * _UNITS[m.group(2)]
  limit = float(m.group(3)) * _UNITS[m.group(4)]
  return {"refused_need_gib": need / GIB, "device_memory_gib": limit / GIB}


def summary_line(rep: dict[str, Any]) -> str:
  """One human line: target, memory/limit, verdict, compile time, collectives."""
  mem = rep.get("memory", {})
  used = (f"{mem['total_gib']:.2f}" if "total_gib" in mem else
          f">{mem['refused_need_gib']:.2f}" if "refused_need_gib" in mem else "?")
  limit = f"{mem['device_memory_gib']:.2f}" if "device_memory_gib" in mem else "?"
  coll = ", ".join(f"{k} {v}" for k, v in rep.get("collectives", {}).items() if v)
  secs = rep.get("compile_s")
  return (f"{rep.get('target')}: {used} / {limit} GiB per device, {rep.get('verdict')}, "
          + (f"compile {secs:.1f} s" if secs is not None else "not compiled") + (f"; {coll}" if coll else ""))
