"""Unit tests of the model building blocks: tubelets, masking, positions, loss, layouts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import loss_reference
import parity
from spectralgpt_jax import losses
from spectralgpt_jax.models import get_model, masking, posembed
from spectralgpt_jax.models.patch_embed import fold_dates, patchify, unpatchify
from spectralgpt_jax.models.transformer import to_scanned, to_unrolled
from spectralgpt_jax.sharding import axis_names as ax
from spectralgpt_jax.torch import MaskedAutoencoderViT, create_model
from spectralgpt_jax.torch.layers import full_pos_embed



@pytest.mark.parametrize("t_patch,patch,shape", [(3, 8, (2, 12, 32, 48)), (2, 4, (1, 6, 8, 8))])
def test_patchify_unpatchify_inverse(t_patch, patch, shape):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  tokens = patchify(x, t_patch, patch)
  grid = (shape[1] // t_patch, shape[2] // patch, shape[3] // patch)
  assert tokens.shape == (shape[0], grid[0] * grid[1] * grid[2], t_patch * patch * patch)
  np.testing.assert_array_equal(unpatchify(tokens, grid, t_patch, patch), x)


def test_patchify_matches_official_order():
  x = np.random.default_rng(1).normal(size=(2, 12, 32, 32)).astype(np.float32)
  twin = create_model("mae_vit_tiny_patch8_32")
  ours = np.asarray(patchify(x, 3, 8))
  np.testing.assert_array_equal(ours, twin.patchify(torch.from_numpy(x)[:, None]).numpy())


def test_patchify_rejects_indivisible_cube():
  with pytest.raises(ValueError, match="not divisible"):
    patchify(np.zeros((1, 12, 30, 32)), 3, 8)


def test_fold_dates_puts_dates_slowest():
  x = np.arange(2 * 3 * 4 * 2 * 2).reshape(2, 3, 4, 2, 2)
  folded = np.asarray(fold_dates(x))
  assert folded.shape == (2, 12, 2, 2)
  np.testing.assert_array_equal(folded[:, 4:8], x[:, 1])


@pytest.mark.parametrize("length,ratio", [(1024, 0.9), (576, 0.9), (64, 0.75), (10, 0.5)])
def test_masking_counts_and_restore(length, ratio):
  noise = jax.random.uniform(jax.random.key(0), (3, length))
  info = masking.random_masking(noise, ratio)
  keep = int(length * (1 - ratio))
  assert info.ids_keep.shape == (3, keep)
  np.testing.assert_array_equal(np.asarray(info.mask).sum(1), length - keep)
  shuffle = np.argsort(np.asarray(noise), axis=1)
  restored = np.take_along_axis(shuffle, np.asarray(info.ids_restore), axis=1)
  np.testing.assert_array_equal(restored, np.broadcast_to(np.arange(length), (3, length)))
  # Kept tokens are exactly the unmasked ones.
  kept_mask = np.take_along_axis(np.asarray(info.mask), np.asarray(info.ids_keep), axis=1)
  assert kept_mask.sum() == 0


def test_masking_matches_twin_given_same_noise():
  noise = np.random.default_rng(2).uniform(size=(2, 64)).astype(np.float32)
  info = masking.random_masking(noise, 0.9)
  x = torch.zeros(2, 64, 1)
  _, mask_t, restore_t, keep_t = MaskedAutoencoderViT.random_masking(
      x, 0.9, noise=torch.from_numpy(noise))
  np.testing.assert_array_equal(np.asarray(info.mask), mask_t.numpy())
  np.testing.assert_array_equal(np.asarray(info.ids_restore), restore_t.numpy())
  np.testing.assert_array_equal(np.asarray(info.ids_keep), keep_t.numpy())


def test_masking_rejects_bad_ratio():
  with pytest.raises(ValueError, match="mask_ratio"):
    masking.num_kept(16, 1.0)


def test_loss_hand_made_case():
  """2 groups x 2 positions, 1-value tokens: every term can be checked by hand."""
  target = np.array([[[1.], [2.], [3.], [4.]]], np.float32)  # tokens (g0,s0) (g0,s1) (g1,s0) (g1,s1)
  pred = np.array([[[1.], [0.], [3.], [1.]]], np.float32)
  mask = np.array([[0., 1., 0., 1.]], np.float32)
  loss, terms = losses.spectralgpt_loss(pred, target, mask, (2, 1, 2))
  # masked tokens: errors 2 and 3 -> (4 + 9) / 2; sums per position: s0 4 vs 4, s1 1 vs 6 -> 25 / 2
  assert float(terms["loss_mse"]) == pytest.approx(6.5)
  assert float(terms["loss_spectral"]) == pytest.approx(12.5)
  assert float(loss) == pytest.approx(19.0)


@pytest.mark.parametrize("norm_pix", [False, True])
def test_loss_equals_numpy_reference(norm_pix):
  rng = np.random.default_rng(3)
  imgs = rng.uniform(size=(2, 12, 32, 32)).astype(np.float32)
  pred = rng.normal(size=(2, 64, 192)).astype(np.float32)
  mask = (rng.uniform(size=(2, 64)) > 0.5).astype(np.float32)
  loss, terms = losses.spectralgpt_loss(pred, patchify(imgs, 3, 8), mask, (4, 4, 4),
                                        norm_pix=norm_pix)
  ref, ref1, ref3 = loss_reference.reference_loss_numpy(imgs, pred, mask, 3, 8, norm_pix)
  np.testing.assert_allclose([loss, terms["loss_mse"], terms["loss_spectral"]],
                             [ref, ref1, ref3], rtol=1e-5)


def test_loss_weights_are_configurable():
  rng = np.random.default_rng(4)
  pred, target = rng.normal(size=(2, 3, 16, 8)).reshape(2, 48, 8), rng.normal(size=(2, 48, 8))
  mask = np.ones((2, 48), np.float32)
  _, terms = losses.spectralgpt_loss(pred, target, mask, (3, 4, 4))
  loss, _ = losses.spectralgpt_loss(pred, target, mask, (3, 4, 4), mse_weight=0.5,
                                    spectral_weight=2.0)
  assert float(loss) == pytest.approx(0.5 * terms["loss_mse"] + 2 * terms["loss_spectral"])


def test_pos_embed_combine_matches_official_order():
  spatial = np.random.default_rng(5).normal(size=(1, 16, 8)).astype(np.float32)
  temporal = np.random.default_rng(6).normal(size=(1, 4, 8)).astype(np.float32)
  ours = np.asarray(posembed.combine(spatial, temporal))
  theirs = full_pos_embed(torch.from_numpy(spatial), torch.from_numpy(temporal))
  np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)


def test_pos_embed_resize():
  table = np.random.default_rng(7).normal(size=(1, 144, 16)).astype(np.float32)
  np.testing.assert_array_equal(posembed.resize_spatial(table, 12), table)
  assert posembed.resize_spatial(table, 16).shape == (1, 256, 16)
  # Bicubic resize of a constant table stays constant; a resize there and back is close.
  const = np.ones((1, 144, 4), np.float32)
  np.testing.assert_allclose(posembed.resize_spatial(const, 16), 1.0, atol=1e-5)
  groups = np.random.default_rng(8).normal(size=(1, 4, 16)).astype(np.float32)
  np.testing.assert_array_equal(posembed.resize_groups(groups, 4), groups)
  assert posembed.resize_groups(groups, 6).shape == (1, 6, 16)


def test_model_runs_at_other_image_size_by_resizing_positions():
  model = get_model("mae_vit_tiny_patch8_32")
  x32 = np.zeros((1, 12, 32, 32), np.float32)
  params = parity.init_params(model, x32)
  pred, aux = model.apply({"params": params}, np.zeros((1, 12, 48, 40), np.float32),
                          rngs={"masking": jax.random.key(0)})
  assert pred.shape == (1, 4 * 6 * 5, 192) and aux["mask"].shape == (1, 120)


def test_model_rejects_wrong_band_count():
  model = get_model("mae_vit_tiny_patch8_32")
  with pytest.raises(ValueError, match="13 bands"):
    model.init({"params": jax.random.key(0), "masking": jax.random.key(1)},
               np.zeros((1, 13, 32, 32), np.float32))


def test_time_series_folded_or_own_axis():
  x = np.random.default_rng(9).normal(size=(2, 2, 6, 16, 16)).astype(np.float32)
  folded = get_model("mae_vit_tiny_patch8_32", num_bands=12, img_size=16)
  params = parity.init_params(folded, x)
  assert params["pos_embed_temporal"].shape[1] == 4  # 2 dates x 2 groups in one table
  own = get_model("mae_vit_tiny_patch8_32", num_bands=6, num_dates=2, img_size=16)
  params = parity.init_params(own, x)
  assert params["pos_embed_temporal"].shape[1] == 2 and params["pos_embed_date"].shape[1] == 2
  pred, aux = own.apply({"params": params}, x, rngs={"masking": jax.random.key(0)})
  assert pred.shape == (2, 2 * 2 * 4, 192)
  target = patchify(fold_dates(x), 3, 8)
  loss, _ = losses.spectralgpt_loss(pred, target, aux["mask"], own.spec.grid,
                                    groups_per_date=own.spec.spectral_groups)
  assert np.isfinite(float(loss))


@pytest.mark.parametrize("name", ["mae_vit_tiny_patch8_32", "vit_tiny_patch8_32"])
def test_scan_and_unrolled_agree_and_convert(name):
  x = np.random.default_rng(10).uniform(size=(2, 12, 32, 32)).astype(np.float32)
  unrolled, scanned = get_model(name), get_model(name, scan=True, remat="full")
  params = parity.init_params(unrolled, x)
  scanned_params = to_scanned(params)
  assert scanned_params["blocks"]["layers"]["attn"]["q"]["kernel"].shape[0] == 2
  kw = {"noise": np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(2, 0)}
  kw = kw if name.startswith("mae") else {}
  out_u = unrolled.apply({"params": params}, x, **kw)
  out_s = scanned.apply({"params": scanned_params}, x, **kw)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), out_u, out_s)
  back = to_unrolled(scanned_params)
  jax.tree.map(np.testing.assert_array_equal, back, params)


@pytest.mark.parametrize("scan", [False, True])
def test_every_param_has_logical_axes(scan):
  model = get_model("mae_vit_tiny_patch8_32", scan=scan)
  boxed = jax.eval_shape(lambda: model.init(
      {"params": jax.random.key(0), "masking": jax.random.key(1)}, jnp.zeros((1, 12, 32, 32))))
  leaves = jax.tree.leaves(boxed["params"], is_leaf=lambda v: isinstance(v, nn.Partitioned))
  vocab = set(ax.WEIGHT_AXES) | {None}
  for leaf in leaves:
    assert isinstance(leaf, nn.LogicallyPartitioned), leaf
    assert len(leaf.names) == leaf.value.ndim and set(leaf.names) <= vocab, leaf.names


def test_gradients_finite_and_bf16_close_to_f32():
  x = np.random.default_rng(11).uniform(size=(2, 12, 32, 32)).astype(np.float32)
  noise = np.random.default_rng(12).uniform(size=(2, 64)).astype(np.float32)
  f32 = get_model("mae_vit_tiny_patch8_32")
  bf16 = get_model("mae_vit_tiny_patch8_32", dtype=jnp.bfloat16)
  params = parity.init_params(f32, x)

  def loss_fn(model):
    def fn(p):
      pred, aux = model.apply({"params": p}, x, noise=noise)
      return losses.spectralgpt_loss(pred, patchify(x, 3, 8), aux["mask"], model.spec.grid)[0]
    return jax.jit(jax.value_and_grad(fn))

  loss32, grads = loss_fn(f32)(params)
  loss16, grads16 = loss_fn(bf16)(params)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert all(np.isfinite(np.asarray(g, np.float32)).all() for g in jax.tree.leaves(grads16))
  assert jax.tree.leaves(grads16)[0].dtype == jnp.float32  # params (and grads) stay f32
  # Stated tolerance: bf16 compute (f32 params, f32 softmax and loss) within 2% of f32.
  assert abs(float(loss16) - float(loss32)) / float(loss32) < 2e-2


def test_masked_mse_without_masked_tokens_is_zero_not_nan():
  pred = np.ones((1, 4, 2), np.float32)
  assert float(losses.masked_mse(pred, pred * 3, np.zeros((1, 4), np.float32))) == 0.0
