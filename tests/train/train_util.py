"""Helpers of the training tests (imported by name: pytest puts tests/train on sys.path)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny(**overrides):
  """configs/pretrain/tiny_s2.py on synthetic 32 px cubes, short and quiet; dotted overrides."""
  from configs.pretrain import tiny_s2
  c = tiny_s2.get_config("synthetic,size=32")
  c.total_steps = 6
  c.checkpoint.every_steps = 3
  c.log.every_steps = 1
  c.log.panel_every_steps = 0
  c.log.panel_examples = 2
  c.checkpoint.async_save = True
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def subprocess_env(jax_cache_dir: str, devices: int = 8) -> dict:
  """Environment for a child `python -m spectralgpt_jax ...` sharing the compilation cache."""
  env = dict(os.environ)
  env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_COMPILATION_CACHE_DIR=jax_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH", "")])))
  return env



def read_events(logdir: str) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list]]:
  """TensorBoard event files -> ({scalar tag: [(step, value)]}, {image tag: [(step, h, w)]})."""
  from tensorboardX.proto import event_pb2
  from data_pipelines.tfrecord import iter_records
  scalars, images = {}, {}
  for name in sorted(os.listdir(logdir)):
    if "tfevents" not in name:
      continue
    for _, raw in iter_records(os.path.join(logdir, name)):
      ev = event_pb2.Event.FromString(raw)
      for v in ev.summary.value:
        if v.HasField("image"):
          images.setdefault(v.tag, []).append((ev.step, v.image.height, v.image.width))
        elif v.HasField("simple_value"):
          scalars.setdefault(v.tag, []).append((ev.step, v.simple_value))
  return scalars, images
