"""SpectralGPT in plain PyTorch: our weights (and the official ones) without the official
repository, timm, torchvision, einops or jax (clean room: written from the published facts of the official model).

    from spectralgpt_jax.torch import from_pretrained
    model = from_pretrained("spectralgpt_base.safetensors")   # or .pth, or SpectralGPT+.pth
    emb = model.embed(x)                                      # x [B, 12, 128, 128] -> [B, D]
    feats = model.forward_features(x, layers=[3, 5, 7, 11])   # 4 x [B, L, D] (PANGAEA style)
    loss, pred, mask = model(x, mask_ratio=0.9)               # MAE: the official forward
    seg = from_pretrained("flood_seg.safetensors")            # a DenseModel (dense export)
    logits = seg(x)                                           # [B, K, H, W]; change: seg(x1, x2)

Modules keep the official state_dict keys and order (`models_mae_spectral.MaskedAutoencoderViT`,
`models_vit_tensor.VisionTransformer`; the segmentation / change heads under the official
SegMunich / OSCD names, docs/weights.md), so `model.state_dict()` also loads into the official code.
Needs torch, numpy and safetensors only (`pip install 'spectralgpt-jax[torch]'`).
"""

from spectralgpt_jax.torch.dense import DenseModel
from spectralgpt_jax.torch.factories import create_model, model_names
from spectralgpt_jax.torch.mae import MaskedAutoencoderViT
from spectralgpt_jax.torch.pretrained import ManifestError, from_pretrained, read_weights
from spectralgpt_jax.torch.vit import VisionTransformer

__all__ = ["DenseModel", "MaskedAutoencoderViT", "VisionTransformer", "ManifestError",
           "create_model", "from_pretrained", "model_names", "read_weights"]
