"""Fine-tuning on the training machinery: the official recipe's loss, mixing and layer decay,
and a tiny classifier trained from a pretrained MAE on the real BigEarthNet patches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from configs.finetune import tiny_bigearthnet
from data_pipelines import pipeline
from spectralgpt_jax import checkpoints
from spectralgpt_jax.models import get_model, shapes
from spectralgpt_jax.models.transformer import to_scanned
from spectralgpt_jax.train import loop, optim
from spectralgpt_jax.train.tasks import classify


def test_layer_decay_follows_the_official_assignment():
  model = get_model("vit_tiny_patch8_32")  # depth 2: num_layers 3
  params = shapes.param_shapes(model)
  ids = optim.layer_ids(params, 2)
  assert ids["patch_embed"]["proj"]["kernel"] == 0 and ids["pos_embed_spatial"] == 0
  assert ids["blocks"]["layers_0"]["attn"]["q"]["kernel"] == 1
  assert ids["blocks"]["layers_1"]["mlp"]["fc2"]["bias"] == 2
  assert ids["norm"]["scale"] == 3 and ids["head"]["kernel"] == 3
  tx = optim.scale_by_layer_decay(0.75, 2)
  ones = jax.tree.map(lambda s: jnp.ones(s.shape), params)
  scaled, _ = tx.update(ones, tx.init(ones))
  assert float(scaled["patch_embed"]["proj"]["kernel"][0, 0]) == pytest.approx(0.75 ** 3)
  assert float(scaled["blocks"]["layers_0"]["attn"]["q"]["kernel"][0, 0]) == pytest.approx(0.75**2)
  assert float(scaled["head"]["bias"][0]) == 1.0
  stacked, _ = tx.update(to_scanned(ones), tx.init(ones))  # scanned: per-layer factors
  np.testing.assert_allclose(stacked["blocks"]["layers"]["attn"]["q"]["kernel"][:, 0, 0],
                             [0.75 ** 2, 0.75])


def test_losses_equal_torch():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 7)).astype(np.float32)
  multi = (rng.uniform(size=(5, 7)) > 0.5).astype(np.float32)
  ours = classify.multilabel_soft_margin(jnp.asarray(logits), jnp.asarray(multi))
  ref = torch.nn.MultiLabelSoftMarginLoss()(torch.tensor(logits), torch.tensor(multi))
  assert float(ours) == pytest.approx(float(ref), rel=1e-6)
  label = rng.integers(0, 7, size=5)
  target = classify.smooth_one_hot(jnp.asarray(label), 7, 0.1)
  ref = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(logits), torch.tensor(label))
  assert float(classify.soft_cross_entropy(jnp.asarray(logits), target)) == pytest.approx(
      float(ref), rel=1e-6)


def test_cutmix_and_mixup_mix_images_and_targets_alike():
  cube = jnp.stack([jnp.full((2, 16, 16), float(i)) for i in range(4)])  # example i is all i
  target = jax.nn.one_hot(jnp.arange(4), 4)
  for seed in range(6):
    for mixup, cutmix in ((0.8, 0.0), (0.0, 1.0), (0.8, 1.0)):
      mixed, soft = classify.mix_batch(jax.random.key(seed), cube, target, mixup_alpha=mixup,
                                       cutmix_alpha=cutmix)
      np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
      # Each image is a blend of itself and its mirror in the batch; its mean value is the
      # soft target's weighting of the two (the box's area for cutmix, lambda for mixup).
      expected = (soft * jnp.arange(4.0)).sum(-1)
      np.testing.assert_allclose(mixed.mean(axis=(1, 2, 3)), expected, rtol=1e-5, atol=1e-5)


def test_tiny_finetune_from_a_pretrained_mae_with_evaluation(ben_dir, trained_mae, tmp_path):
  config = tiny_bigearthnet.get_config("steps=4")
  config.data.paths = ben_dir
  config.init_from.workdir = str(trained_mae[0])
  config.eval_every_steps = 2
  config.checkpoint.every_steps = 2
  seen = []

  def evaluate(program, state, step):
    """Multi-label loss of the whole split in eval mode (the evaluation room does metrics)."""
    cfg = config.data.copy_and_resolve_references()
    with cfg.unlocked():
      cfg.train, cfg.num_epochs, cfg.drop_remainder, cfg.shuffle = False, 1, False, False
      cfg.batch_size = 6
    batch = next(pipeline.make_iterator(cfg, process_index=0, process_count=1))
    logits = program.predict_host(state.params, batch["cube"])
    seen.append(step)
    return {"loss": float(classify.multilabel_soft_margin(logits, batch["label"]))}

  last = loop.train(config, str(tmp_path / "ft"), evaluate=evaluate)
  assert seen == [2, 4] and last["step"] == 4 and np.isfinite(last["eval/loss"])
  params = checkpoints.read_checkpoint(tmp_path / "ft").params
  assert params["head"]["kernel"].shape == (64, 19)
  # The encoder started from the MAE (layer decay keeps the patch embedding close to it).
  mae = trained_mae[1]["patch_embed"]["proj"]["kernel"]
  assert np.abs(params["patch_embed"]["proj"]["kernel"] - mae).max() < 0.05
