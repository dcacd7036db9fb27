"""Observability: TensorBoard (tensorboardX, no TF), the progress line, throughput and MFU.

Only process 0 writes (`Writer(active=False)` elsewhere is a no-op). Images are PNG-encoded by
`panels.encode_png` and written as raw image summaries, so neither PIL nor TF is needed.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Mapping

import numpy as np
from absl import logging

from data_pipelines import storage
from spectralgpt_jax import devices
from spectralgpt_jax.models import flops


def peak_flops(device_kind: str, override_tflops: float = 0.0) -> float | None:
  """Peak FLOP/s of one device: the override (TFLOP/s) if > 0, else the table of
  spectralgpt_jax/devices.py keyed by the exact device_kind the chip reports (v5p: "TPU v5"),
  else None (MFU omitted)."""
  if override_tflops and override_tflops > 0:
    return override_tflops * 1e12
  tflops = devices.peak_bf16_tflops(device_kind)
  return None if tflops is None else tflops * 1e12


def model_flops_per_example(spec, mask_ratio: float, image_size: int | None = None) -> float:
  """Training FLOPs of one example at `image_size` (models.flops: 3 x forward, matmuls only;
  MAE: the encoder sees the kept tokens, the decoder all of them; classifier: every token;
  dense models: the encoder per date, the convolutional head not counted)."""
  if image_size and image_size != spec.img_size:
    spec = dataclasses.replace(spec, img_size=image_size)
  if spec.kind == "vit":
    return 3.0 * flops.vit_forward_flops(spec)
  if spec.kind in ("seg", "change"):
    dates = 2 if spec.kind == "change" else 1
    return 3.0 * dates * flops.vit_forward_flops(dataclasses.replace(spec, num_classes=0))
  return flops.mae_train_flops(spec, 1, mask_ratio)


def format_eta(seconds: float) -> str:
  seconds = max(0, int(seconds))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Throughput:
  """Images/s and MFU over the window since the last `measure` call."""

  def __init__(self, batch_size: int, flops_per_example: float, num_devices: int,
               peak: float | None):
    self.batch_size, self.flops, self.devices, self.peak = batch_size, flops_per_example, \
        num_devices, peak
    self._t, self._step = None, None

  def start(self, step: int) -> None:
    self._t, self._step = time.perf_counter(), step

  def measure(self, step: int) -> dict[str, float]:
    now = time.perf_counter()
    if self._t is None or step <= self._step:
      self.start(step)
      return {}
    steps, dt = step - self._step, now - self._t
    self._t, self._step = now, step
    ips = steps * self.batch_size / dt
    out = {"images_per_sec": ips, "steps_per_sec": steps / dt,
           "tflops_per_device": ips * self.flops / self.devices / 1e12}
    if self.peak:
      out["mfu"] = ips * self.flops / (self.devices * self.peak)
    return out


def progress_line(step: int, total: int, m: Mapping[str, float], eta_s: float | None) -> str:
  """`step 120/300 | loss 0.1234 (mse 0.0912, spectral 0.0322) | lr 1.2e-03 | 38.2 img/s ...`
  (the loss terms of pretraining, or the pixel accuracy of a dense model, when present)."""
  loss = f"loss {m.get('loss', float('nan')):.4f}"
  if "loss_mse" in m or "loss_spectral" in m:
    loss += (f" (mse {m.get('loss_mse', float('nan')):.4f},"
             f" spectral {m.get('loss_spectral', float('nan')):.4f})")
  elif "pixel_accuracy" in m:
    loss += f" (pixel accuracy {m['pixel_accuracy']:.3f})"
  parts = [f"step {step}/{total}", loss, f"lr {m.get('lr', float('nan')):.2e}"]
  if "images_per_sec" in m:
    parts.append(f"{m['images_per_sec']:.1f} img/s")
  if "mfu" in m:
    parts.append(f"MFU {100 * m['mfu']:.1f}%")
  if m.get("skipped_total"):
    parts.append(f"skipped {int(m['skipped_total'])}")
  if eta_s is not None:
    parts.append(f"ETA {format_eta(eta_s)}")
  return " | ".join(parts)


class _StorageEventFile:
  """An event file in an object store (data_pipelines.storage): object stores cannot append,
  so every flush uploads the whole file again in one PUT (as tensorboardX's own S3 writer)."""

  def __init__(self, url: str):
    self.url, self._buf = url, io.BytesIO()

  def write(self, data: bytes) -> None:
    self._buf.write(data)

  def flush(self) -> None:
    storage.write_bytes(self.url, self._buf.getvalue())

  def close(self) -> None:
    self.flush()


class _StorageEventFiles:
  """tensorboardX writer factory for gs://, s3://, ... logdirs."""

  def open(self, path: str) -> _StorageEventFile:
    return _StorageEventFile(path)

  def directory_check(self, path: str) -> None:
    del path  # object stores have no folders


class Writer:
  """TensorBoard scalars and images under `logdir`; inactive (no files) when active=False."""

  def __init__(self, logdir: str, active: bool = True):
    self.logdir, self.active = logdir, active
    self._tb = None
    if active:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      if storage.is_url(logdir):
        from tensorboardX import record_writer  # pylint: disable=g-import-not-at-top
        record_writer.register_writer_factory(logdir.split("://", 1)[0], _StorageEventFiles())
      else:
        os.makedirs(logdir, exist_ok=True)
      self._tb = SummaryWriter(logdir=logdir, flush_secs=10)

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    if self._tb is None:
      return
    for k, v in values.items():
      if np.isfinite(v) or k.startswith("loss"):
        self._tb.add_scalar(k, float(v), step)

  def image_png(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
    """A PNG-encoded RGB image (see panels.encode_png) as a TensorBoard image summary."""
    if self._tb is None:
      return
    from tensorboardX.proto.summary_pb2 import Summary  # pylint: disable=g-import-not-at-top
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
    self._tb._get_file_writer().add_summary(  # pylint: disable=protected-access
        Summary(value=[Summary.Value(tag=tag, image=image)]), step)

  def text(self, step: int, tag: str, text: str) -> None:
    if self._tb is not None:
      self._tb.add_text(tag, text, step)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def log_line(line: str, active: bool = True) -> None:
  if active:
    logging.info("%s", line)
