"""Logical-axis -> mesh-axis rule presets. Nothing here is computed; configs pick one by name.

The mesh always has three named axes (see `mesh.py`):
  data    pure data parallelism: parameters replicated, batch split.
  fsdp    fully sharded data parallelism: batch split *and* parameters/optimizer state split
          along their `embed` axis (gathered per layer inside the step by XLA).
  tensor  tensor (model) parallelism: attention heads and MLP hidden units split.
A preset maps every logical name of `axis_names.py` to a mesh axis, a tuple of them, or None
(replicated). Rules resolve in order and never use a mesh axis twice in one array.

Presets
  dp       parameters replicated; batch over (data, fsdp). Use for models that fit one device.
  fsdp     + parameters and optimizer state sharded over fsdp on their `embed` axis.
  fsdp_tp  + heads and mlp over tensor (Megatron-style column/row split).
"""

from __future__ import annotations

from spectralgpt_jax.sharding import axis_names as ax

Rules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

DATA, FSDP, TENSOR = "data", "fsdp", "tensor"
MESH_AXES = (DATA, FSDP, TENSOR)
BATCH_AXES = (DATA, FSDP)  # the axes that split the batch in every preset

_ALWAYS_REPLICATED: Rules = (
    (ax.PATCH_IN, None), (ax.TOKENS, None), (ax.CLASSES, None), (ax.LAYERS, None),
    (ax.ACT_TOKENS, None), (ax.ACT_EMBED, None),
)

RULE_PRESETS: dict[str, Rules] = {
    "dp": (
        (ax.ACT_BATCH, BATCH_AXES),
        (ax.EMBED, None), (ax.HEADS, None), (ax.MLP, None),
    ) + _ALWAYS_REPLICATED,
    "fsdp": (
        (ax.ACT_BATCH, BATCH_AXES),
        (ax.EMBED, FSDP), (ax.HEADS, None), (ax.MLP, None),
    ) + _ALWAYS_REPLICATED,
    "fsdp_tp": (
        (ax.ACT_BATCH, BATCH_AXES),
        (ax.EMBED, FSDP), (ax.HEADS, TENSOR), (ax.MLP, TENSOR),
    ) + _ALWAYS_REPLICATED,
}


def get_rules(name: str, overrides: Rules | list = ()) -> Rules:
  """The preset `name`, with `overrides` ((logical, mesh axes) pairs) taking precedence."""
  if name not in RULE_PRESETS:
    raise KeyError(f"config.sharding.rules: unknown preset {name!r}; "
                   f"known: {', '.join(RULE_PRESETS)}")
  overrides = tuple((str(k), tuple(v) if isinstance(v, list) else v) for k, v in overrides)
  for logical, _ in overrides:
    if logical not in ax.WEIGHT_AXES + ax.ACTIVATION_AXES:
      raise KeyError(f"config.sharding.overrides: {logical!r} is not a logical axis name "
                     f"(see spectralgpt_jax/sharding/axis_names.py)")
  return overrides + RULE_PRESETS[name]
