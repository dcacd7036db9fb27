"""Shared pieces of the dense evaluation configs (oscd.py, segmunich.py, sen1floods11.py)."""

from configs import evaluation as E
from data_pipelines.config import produces, set_fields

# Head widths of the tiny test models (official: pyramid 256/512/1024/2048, head 256, GN 32/16).
TINY_HEAD = dict(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                 head_groups=8)


def dense_test_data(*, source: str, root: str, num_classes: int, **fields):
  """A dense data block read whole for scoring (data_pipelines.dense.load_dense_images)."""
  d = E.eval_data(label_type="single", num_classes=num_classes, image_size=128, source=source,
                  paths=root, normalization="minmax")
  d.use_mask, d.use_cube2 = True, produces(source, "cube2")
  return set_fields(d, **fields)


def tiny_run(t, steps: int, lr: float = 3e-3) -> None:
  """A brief CPU run of a tiny dense model: tiny head, no head dropout, one checkpoint."""
  t.total_steps = steps
  t.model.update(TINY_HEAD)
  t.model.dropout = 0.0
  t.optim.lr = lr
  t.checkpoint.every_steps, t.log.every_steps = steps, 10
