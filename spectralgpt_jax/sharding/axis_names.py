"""The logical axis vocabulary: every parameter and constrained activation names its axes here.

Model code only ever speaks these names; which mesh axis (if any) each maps to is decided by a
rule preset at launch (`spectralgpt_jax/sharding/rules.py`), so the model never sees a mesh.

Weights
  EMBED      model width (encoder 768/1024/1280, decoder 512). FSDP shards it.
  HEADS      flattened attention features (heads x head_dim) of q/k/v/proj. Tensor parallel
             shards it (Megatron-style column/row split of attention).
  MLP        MLP hidden width (4 x embed). Tensor parallel shards it.
  PATCH_IN   the t x p x p values of one 3D tubelet, input of the patch embedding. Never sharded.
  TOKENS     position-table axis (spatial positions, spectral groups, dates). Never sharded.
  CLASSES    classifier outputs. Never sharded.
  LAYERS     the stacked-layer axis of scanned transformer blocks. Never sharded.

Activations (constrained at block boundaries only)
  ACT_BATCH  batch. Data-parallel and FSDP axes shard it.
  ACT_TOKENS sequence of tokens. Kept whole: masking gathers along it per example.
  ACT_EMBED  residual-stream width. Usually replicated.
"""

EMBED = "embed"
HEADS = "heads"
MLP = "mlp"
PATCH_IN = "patch_in"
TOKENS = "tokens"
CLASSES = "classes"
LAYERS = "layers"

ACT_BATCH = "act_batch"
ACT_TOKENS = "act_tokens"
ACT_EMBED = "act_embed"

WEIGHT_AXES = (EMBED, HEADS, MLP, PATCH_IN, TOKENS, CLASSES, LAYERS)
ACTIVATION_AXES = (ACT_BATCH, ACT_TOKENS, ACT_EMBED)
RESIDUAL = (ACT_BATCH, ACT_TOKENS, ACT_EMBED)
