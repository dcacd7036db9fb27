"""spectralgpt_jax.torch (our PyTorch package) against the official SpectralGPT facts recorded
in ../shared/spec, not against our JAX models: keys, shapes, order and parameter counts of every
variant, masking, patchify, loss and init."""

from __future__ import annotations

import pathlib
import re
from typing import Dict, List, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import loss_reference  # noqa: E402  (tests/ is on sys.path: tests/conftest.py)
from spectralgpt_jax.torch import MaskedAutoencoderViT, create_model  # noqa: E402
from spectralgpt_jax.torch.layers import full_pos_embed  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS_FILE = REPO_ROOT.parent / "shared" / "spec" / "official_state_dict_keys.txt"

Shape = Tuple[int, ...]

# Official classifier factories outside our variant table (spec section 1.4): their kwargs.
_OTHER_OFFICIAL = {
    "vit_base_patch16": dict(img_size=96, patch_size=16),
    "vit_base_patch16_128": dict(patch_size=16),
    "vit_base_patch8_channel10": dict(t_patch_size=2, num_frames=10),
    "vit_base_patch8_120": dict(img_size=120, t_patch_size=12),
}


def _build(name: str, **kw) -> torch.nn.Module:
  if name in _OTHER_OFFICIAL:
    return create_model("vit_base_patch8_128", **_OTHER_OFFICIAL[name], **kw)
  return create_model(name, **kw)


def _count(model) -> int:
  return sum(p.numel() for p in model.parameters())


def _encoder_count(model) -> int:
  return sum(p.numel() for k, p in model.named_parameters()
             if not (k.startswith("decoder_") or k == "mask_token"))


# ------------------------------------------------------------------------------------------
# Parsing the official keys file
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys_text() -> str:
  if not KEYS_FILE.exists():
    pytest.skip(f"official key dump not found at {KEYS_FILE} (needs ../shared/spec checkout)")
  return KEYS_FILE.read_text()


def _sections(text: str) -> Dict[str, List[str]]:
  """'### <title>' -> its lines (until the next '###')."""
  out: Dict[str, List[str]] = {}
  cur = None
  for line in text.splitlines():
    if line.startswith("### "):
      cur = line[4:].strip()
      out[cur] = []
    elif cur is not None:
      out[cur].append(line)
  return out


def _section(text: str, prefix: str) -> List[str]:
  secs = [v for k, v in _sections(text).items() if k.startswith(prefix)]
  assert len(secs) == 1, f"expected one section starting with {prefix!r}"
  return secs[0]


def _parse_keys(lines: List[str]) -> List[Tuple[str, Shape]]:
  """'key\\t(a, b)\\tdtype' lines -> [(key, shape)] in file order."""
  out = []
  for line in lines:
    if not line.strip() or line.startswith("#"):
      continue
    key, shape = line.split("\t")[:2]
    out.append((key, tuple(int(v) for v in re.findall(r"\d+", shape))))
  return out


def _state_shapes(model: torch.nn.Module) -> List[Tuple[str, Shape]]:
  return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def _meta(name: str, **kw) -> torch.nn.Module:
  with torch.device("meta"):
    return _build(name, **kw)


# ------------------------------------------------------------------------------------------
# Keys, shapes, order and parameter counts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("section,factory,kw", [
    ("PRETRAIN models_mae_spectral.mae_vit_base_patch8_128", "mae_vit_base_patch8_128", {}),
    ("PRETRAIN models_mae_spectral.mae_vit_base_patch8_96", "mae_vit_base_patch8_96", {}),
    ("FINETUNE models_vit_tensor.vit_base_patch8_128", "vit_base_patch8_128", {"num_classes": 10}),
])
def test_state_dict_keys_shapes_order(keys_text, section, factory, kw):
  lines = _section(keys_text, section)
  expected = _parse_keys(lines)
  got = _state_shapes(_meta(factory, **kw))
  assert [k for k, _ in got] == [k for k, _ in expected]       # same keys, same order
  assert got == expected
  m = re.search(r"n_tensors=(\d+) n_params=([\d,]+)", "\n".join(lines))
  assert len(got) == int(m.group(1))
  assert sum(int(np.prod(s)) for _, s in got) == int(m.group(2).replace(",", ""))


def _count_lines(text: str) -> Dict[str, Dict[str, str]]:
  out = {}
  for line in _section(text, "parameter counts (all variants)"):
    if not line.strip():
      continue
    name, rest = line.split(":", 1)
    fields = dict(re.findall(r"(\S+?)=(\([^)]*\)|\S+)", rest))
    out[name.strip()] = fields
  return out


def _int(s: str) -> int:
  return int(s.replace(",", ""))


def _tuple(s: str) -> Shape:
  return tuple(int(v) for v in re.findall(r"\d+", s))


def test_parameter_counts_all_variants(keys_text):
  rows = _count_lines(keys_text)
  assert len(rows) == 14
  for label, f in rows.items():
    m = re.fullmatch(r"(\w+)(?:\(num_classes=(\d+)\))?", label)
    name, ncls = m.group(1), m.group(2)
    kw = {"num_classes": int(ncls)} if ncls else {}
    model = _meta(name, **kw)
    sd = model.state_dict()
    assert _count(model) == _int(f["total"]), name
    assert tuple(sd["patch_embed.proj.weight"].shape) == _tuple(f["patch_embed.proj.weight"]), name
    assert model.input_size == _tuple(f["grid(T,H,W)"]), name
    if name.startswith("mae_"):
      enc = _encoder_count(model)
      assert enc == _int(f["encoder"]), name
      assert _count(model) - enc == _int(f["decoder+mask_token"]), name
      assert int(np.prod(model.input_size)) == _int(f["tokens"]), name
      assert tuple(sd["decoder_pred.weight"].shape) == _tuple(f["decoder_pred"]), name
    else:
      assert tuple(sd["pos_embed"].shape) == _tuple(f["pos_embed"]), name


def test_pretrain_to_finetune_key_transfer(keys_text):
  """Key-set difference equals the official strict=False load report (spec §1.4)."""
  lines = _section(keys_text, "load_state_dict(pretrain_base_128 -> finetune")
  text = "\n".join(lines)
  missing = re.search(r"missing_keys: (.*)", text).group(1).split(", ")
  unexpected = re.search(r"unexpected_keys: (.*)", text).group(1).split(", ")
  mae = _meta("mae_vit_base_patch8_128").state_dict()
  vit = _meta("vit_base_patch8_128", num_classes=10).state_dict()
  assert [k for k in vit if k not in mae] == missing
  assert [k for k in mae if k not in vit] == unexpected
  for k in vit.keys() & mae.keys():
    assert vit[k].shape == mae[k].shape, k


# ------------------------------------------------------------------------------------------
# Numerics on the tiny variant
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> MaskedAutoencoderViT:
  torch.manual_seed(0)
  return create_model("mae_vit_tiny_patch8_32").eval()


def test_patchify_unpatchify_roundtrip(tiny):
  x = torch.randn(2, 1, 12, 32, 32)
  p = tiny.patchify(x)
  assert p.shape == (2, 64, 192)
  assert torch.equal(tiny.unpatchify(p), x)
  # Row order (t, h, w); inner order (band u, row p, col q) = C-order flatten of the cube.
  t, h, w = 2, 1, 3
  assert torch.equal(p[1, t * 16 + h * 4 + w], x[1, 0, 3 * t:3 * t + 3, 8 * h:8 * h + 8,
                                                   8 * w:8 * w + 8].reshape(-1))


def test_patch_embed_matches_formula(tiny):
  torch.manual_seed(1)
  x = torch.randn(2, 12, 32, 32, dtype=torch.float64)
  pe = tiny.patch_embed.double()
  try:
    out = pe(x.unsqueeze(1))                                 # (B, T', H'W', D)
    assert out.shape == (2, 4, 16, 64)
    W, b = pe.proj.weight, pe.proj.bias                      # (D, 1, 3, 8, 8), (D,)
    for n in range(2):
      for t in range(4):
        for h in range(4):
          for w in range(4):
            cube = x[n, 3 * t:3 * t + 3, 8 * h:8 * h + 8, 8 * w:8 * w + 8]
            ref = (W[:, 0] * cube).sum(dim=(1, 2, 3)) + b
            torch.testing.assert_close(out[n, t, h * 4 + w], ref, rtol=1e-12, atol=1e-12)
    # Conv3d == Dense on the patchified vector with W.reshape(D, 192).
    dense = tiny.patchify(x.unsqueeze(1)) @ W.reshape(64, -1).T + b
    torch.testing.assert_close(out.reshape(2, 64, 64), dense, rtol=1e-12, atol=1e-12)
  finally:
    pe.float()


@pytest.mark.parametrize("L,ratio,keep", [(64, 0.9, 6), (1024, 0.9, 102), (576, 0.9, 57),
                                          (64, 0.75, 16), (10, 0.9, 0)])
def test_random_masking_with_noise(L, ratio, keep):
  assert int(L * (1 - ratio)) == keep                       # official Python-float semantics
  torch.manual_seed(2)
  N, D = 3, 5
  x = torch.randn(N, L, D)
  noise = torch.rand(N, L)
  xm, mask, ids_restore, ids_keep = MaskedAutoencoderViT.random_masking(x, ratio, noise)
  assert xm.shape == (N, keep, D) and ids_keep.shape == (N, keep)
  assert mask.shape == (N, L)
  assert torch.all(mask.sum(1) == L - keep)
  order = torch.argsort(noise, dim=1)
  assert torch.equal(ids_keep, order[:, :keep])             # smallest noise kept, ascending
  assert torch.equal(xm, torch.stack([x[n, ids_keep[n]] for n in range(N)]))
  kept = torch.zeros(N, L)
  for n in range(N):
    kept[n, ids_keep[n]] = 1
  assert torch.equal(mask, 1 - kept)                        # 1 = removed, original order
  assert torch.equal(torch.gather(order, 1, ids_restore), torch.arange(L).expand(N, L))


@pytest.mark.parametrize("norm_pix", [False, True])
def test_forward_loss_matches_numpy_reference(norm_pix):
  model = create_model("mae_vit_tiny_patch8_32", norm_pix_loss=norm_pix)
  g = torch.Generator().manual_seed(3)
  imgs = torch.rand(2, 12, 32, 32, generator=g, dtype=torch.float64)
  pred = torch.randn(2, 64, 192, generator=g, dtype=torch.float64)
  _, mask, _, _ = model.random_masking(pred, 0.75, torch.rand(2, 64, generator=g))
  loss, l1, l3 = model.forward_loss(imgs, pred, mask, return_terms=True)
  ref, r1, r3 = loss_reference.reference_loss_numpy(imgs.numpy(), pred.numpy(), mask.numpy(), 3, 8,
                                        norm_pix_loss=norm_pix)
  np.testing.assert_allclose([loss.item(), l1.item(), l3.item()], [ref, r1, r3], rtol=1e-12)
  assert torch.equal(model.forward_loss(imgs, pred, mask), loss)


def test_loss3_uses_raw_targets_and_all_positions():
  """pred == target gives loss 0; with norm_pix only loss1 changes (loss3 on raw sums)."""
  model = create_model("mae_vit_tiny_patch8_32")
  imgs = torch.rand(1, 12, 32, 32, dtype=torch.float64)
  target = model.patchify(imgs.unsqueeze(1))
  mask = torch.zeros(1, 64, dtype=torch.float64)
  mask[0, :10] = 1
  loss, l1, l3 = model.forward_loss(imgs, target, mask, return_terms=True)
  assert loss.item() == 0.0
  model.norm_pix_loss = True
  _, l1n, l3n = model.forward_loss(imgs, target, mask, return_terms=True)
  assert l3n.item() == 0.0 and l1n.item() > 0.0


def test_tiny_forward_end_to_end(tiny):
  torch.manual_seed(4)
  imgs = torch.rand(2, 12, 32, 32)
  noise = torch.rand(2, 64)
  with torch.no_grad():
    loss, pred, mask = tiny(imgs, mask_ratio=0.9, noise=noise)
    latent, mask2, ids_restore = tiny.forward_encoder(imgs, 0.9, noise)
    pred2 = tiny.forward_decoder(latent, ids_restore)
  assert latent.shape == (2, 6, 64) and pred.shape == (2, 64, 192) and mask.shape == (2, 64)
  assert torch.equal(mask, mask2) and torch.allclose(pred, pred2)
  with torch.no_grad():
    total, loss_mse, loss_spectral = tiny.forward_loss(imgs, pred, mask, return_terms=True)
  torch.testing.assert_close(loss, total)
  torch.testing.assert_close(loss, loss_mse + loss_spectral)
  ref, _, _ = loss_reference.reference_loss_numpy(imgs.numpy(), pred.numpy(), mask.numpy(), 3, 8)
  np.testing.assert_allclose(loss.item(), ref, rtol=1e-5)
  # Encoder positional embedding = spatial[s] + temporal[t] on the kept tokens.
  pos = full_pos_embed(tiny.pos_embed_spatial, tiny.pos_embed_temporal)[0]
  torch.testing.assert_close(pos[2 * 16 + 5], tiny.pos_embed_spatial[0, 5] + tiny.pos_embed_temporal[0, 2])


def test_2tensor_loss_uses_derived_patch_dim():
  big = _meta("mae_vit_base_patch8_2tensor_128")
  assert big.patch_dim == 128 and big.input_size == (6, 16, 16)
  imgs = torch.rand(1, 12, 128, 128, dtype=torch.float64)
  pred = torch.randn(1, 1536, 128, dtype=torch.float64)
  _, mask, _, _ = big.random_masking(pred, 0.9, torch.rand(1, 1536))
  loss, l1, l3 = big.forward_loss(imgs, pred, mask, return_terms=True)   # CPU tensors, no params
  ref = loss_reference.reference_loss_numpy(imgs.numpy(), pred.numpy(), mask.numpy(), 2, 8)
  np.testing.assert_allclose([loss.item(), l1.item(), l3.item()], ref, rtol=1e-12)
  # Full forward on a tiny t_patch=2 model.
  small = create_model("mae_vit_tiny_patch8_32", t_patch_size=2)
  loss, pred, mask = small(torch.rand(2, 12, 32, 32), mask_ratio=0.9)
  assert pred.shape == (2, 96, 128) and int(mask.sum()) == 2 * (96 - int(96 * (1 - 0.9)))
  assert torch.isfinite(loss)


def test_init_scheme():
  torch.manual_seed(5)
  m = create_model("mae_vit_base_patch8_96", depth=1, decoder_depth=1)      # full widths, few blocks
  # Linear: xavier uniform weight, zero bias; LN 1/0.
  lin = m.blocks[0].mlp.fc1.weight
  bound = (6.0 / (lin.shape[0] + lin.shape[1])) ** 0.5
  assert lin.abs().max() <= bound and lin.abs().max() > 0.95 * bound
  assert torch.all(m.decoder_pred.bias == 0) and torch.all(m.blocks[0].attn.q.bias == 0)
  assert torch.all(m.norm.weight == 1) and torch.all(m.decoder_blocks[0].norm2.bias == 0)
  # Conv weight: xavier over the (D, 192) view.
  w = m.patch_embed.proj.weight
  cb = (6.0 / (768 + 192)) ** 0.5
  assert w.abs().max() <= cb and w.abs().max() > 0.95 * cb
  assert m.patch_embed.proj.bias.abs().max() <= 192 ** -0.5       # PyTorch default kept
  for p in (m.pos_embed_spatial, m.decoder_pos_embed_spatial, m.mask_token):
    assert abs(p.std().item() - 0.02) < 0.003
  v = create_model("vit_base_patch8_128", num_classes=10, depth=1)
  assert torch.all(v.pos_embed == 0)
  assert abs(v.head.weight.std().item() - 0.02) < 0.003
  dp = [b.drop_path for b in create_model("vit_tiny_patch8_32", depth=12, drop_path_rate=0.2).blocks]
  assert isinstance(dp[0], torch.nn.Identity)
  np.testing.assert_allclose([d.drop_prob for d in dp[1:]], np.linspace(0, 0.2, 12)[1:], rtol=1e-6)


def test_attention_matches_sdpa(tiny):
  attn = tiny.blocks[0].attn
  x = torch.randn(2, 7, 64)
  with torch.no_grad():
    B, N, C = x.shape
    q, k, v = (f(x).reshape(B, N, 4, 16).transpose(1, 2) for f in (attn.q, attn.k, attn.v))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    ref = attn.proj(ref.transpose(1, 2).reshape(B, N, C))
    torch.testing.assert_close(attn(x), ref, rtol=1e-5, atol=1e-6)
  assert isinstance(tiny.blocks[0].mlp.act, torch.nn.GELU) and tiny.blocks[0].mlp.act.approximate == "none"


def test_vit_tiny_pooling_and_encoder_compat(tiny):
  torch.manual_seed(6)
  v = create_model("vit_tiny_patch8_32", num_classes=5, pool="official_skip_first").eval()
  assert set(k for k in v.state_dict() if not k.startswith(("pos_embed", "head"))) <= set(
      tiny.state_dict())
  missing, unexpected = v.load_state_dict(tiny.state_dict(), strict=False)
  assert missing == ["pos_embed", "head.weight", "head.bias"]
  x = torch.rand(3, 12, 32, 32)
  with torch.no_grad():
    per_block = v.forward_features(x)
    assert [f.shape for f in per_block] == [(3, 64, 64)] * 2    # one per block (depth 2)
    feats = v.encode(x)
    torch.testing.assert_close(feats, per_block[-1])
    logits = v(x)
    ref = v.head(v.norm(feats[:, 1:].mean(1)))
    torch.testing.assert_close(logits, ref)
    v.pool_mode = "mean"
    clean = v(x)
    torch.testing.assert_close(clean, v.head(v.norm(feats.mean(1))))
    assert not torch.allclose(clean, logits)
