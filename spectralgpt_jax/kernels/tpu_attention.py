"""TPU attention: Pallas splash attention (jax.experimental.pallas.ops.tpu) for long sequences.

`splash_attention(q, k, v [B, N, H, d]) -> [B, N, H, d]` computes what `ops.xla_attention`
does (softmax(q k^T / sqrt(d)) v, non-causal, float32 softmax inside the kernel) without
materialising the [B, H, N, N] logits, forward or backward (the MAE decoder: N = 1024).

The kernel is a `tpu_custom_call` that XLA cannot partition: under a mesh (`jax.set_mesh`)
it runs inside `jax.shard_map` with the batch split over data x fsdp and heads over tensor,
like the activations around it. Shapes the kernel does not take (N not a multiple of 128,
e.g. the encoder's ~102 kept tokens) go to `ops.xla_attention`; `supports` decides statically.
`interpret=True` runs the same kernel through the Pallas interpreter on any platform (tests).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from spectralgpt_jax.models import ops as ops_lib

LANES = 128      # block sizes (and so N) must be multiples of the TPU lane width
MAX_BLOCK = 512  # query / key block: 1024 tokens = 2 x 2 blocks; logits tile 512 x 512 f32 = 1 MiB
# Mesh axes of the activations around attention (the kernels room imports no sharding code;
# tests/kernels/test_accelerator_attention.py checks these equal sharding.rules').
BATCH_AXES = ("data", "fsdp")
TENSOR = "tensor"


def block_size(n: int) -> int:
  """The largest block <= MAX_BLOCK, a multiple of LANES, dividing n (0 if none)."""
  for b in range(min(MAX_BLOCK, n) // LANES * LANES, 0, -LANES):
    if n % b == 0:
      return b
  return 0


def supports(q: jax.Array) -> bool:
  """Whether the kernel takes q [B, N, H, d] (decided from the static shape only)."""
  _, n, _, d = q.shape
  return block_size(n) > 0 and d % 8 == 0 and d <= 256


def _kernel(n: int, heads: int, interpret: bool):
  """Splash kernel for one example [H, N, d] with a full (non-causal) mask. Built inside the
  trace that uses it (its mask tables become that trace's values; cached, they would leak)."""
  from jax.experimental.pallas.ops.tpu import splash_attention as splash  # pylint: disable=g-import-not-at-top
  b = block_size(n)
  sizes = splash.BlockSizes(block_q=b, block_kv=b, block_kv_compute=b, block_q_dkv=b,
                            block_kv_dkv=b, block_kv_dkv_compute=b, block_q_dq=b, block_kv_dq=b)
  mask = splash.MultiHeadMask([splash.FullMask((n, n)) for _ in range(heads)])
  return splash.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1,
                                interpret=interpret)


def _local(q, k, v, interpret: bool):
  """Unsharded: q, k, v [B, N, H, d] -> [B, N, H, d] through the kernel (vmapped over B)."""
  dtype = q.dtype
  q = q * jnp.asarray(q.shape[-1] ** -0.5, dtype)  # splash applies no scale
  q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))  # [B, H, N, d]
  kernel = _kernel(q.shape[2], q.shape[1], interpret)
  out = jax.vmap(kernel)(q, k, v)
  return out.transpose(0, 2, 1, 3).astype(dtype)


def _spec(mesh, shape) -> P | None:
  """Batch over data x fsdp, heads over tensor, where the mesh has those axes and they divide."""
  names = mesh.axis_names
  batch = tuple(a for a in BATCH_AXES if a in names)
  split = 1
  for a in batch:
    split *= mesh.shape[a]
  heads = TENSOR if TENSOR in names and mesh.shape[TENSOR] > 1 else None
  if shape[0] % split or (heads and shape[2] % mesh.shape[TENSOR]):
    return None
  return P(batch or None, None, heads, None)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *,
                     interpret: bool = False) -> jax.Array:
  """q, k, v [B, N, H, d] -> [B, N, H, d]: splash where `supports(q)`, else xla_attention."""
  if not supports(q):
    return ops_lib.xla_attention(q, k, v)
  local = functools.partial(_local, interpret=interpret)
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return local(q, k, v)
  spec = _spec(mesh, q.shape)
  if spec is None:  # a shape the mesh does not split evenly: the reference, which XLA partitions
    return ops_lib.xla_attention(q, k, v)
  return jax.shard_map(local, in_specs=(spec, spec, spec), out_specs=spec, check_vma=False)(
      q, k, v)


def splash_attention_interpret(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """The same kernel through the Pallas interpreter (any platform; tests)."""
  return splash_attention(q, k, v, interpret=True)
