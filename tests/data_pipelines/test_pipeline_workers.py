"""grain multiprocessing workers: deterministic, resumable, each worker reads its own shards."""

import numpy as np

from data_pipelines import config, pipeline


def _cfg(paths, **kw):
  c = config.default_data_config()
  c.paths, c.batch_size, c.image_size, c.shuffle_window = paths, 4, 32, 8
  c.num_workers, c.with_keys = 2, True
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def test_two_workers_deterministic_resumable_and_complete(synth_dir):
  it = pipeline.make_pipeline(_cfg(synth_dir), process_index=0, process_count=1)
  try:
    first = [next(it) for _ in range(3)]
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
  finally:
    it.close()
  again = pipeline.make_pipeline(_cfg(synth_dir), process_index=0, process_count=1)
  try:
    for a, b in zip(first, [next(again) for _ in range(3)]):
      np.testing.assert_array_equal(a["cube"], b["cube"])
      np.testing.assert_array_equal(a["key"], b["key"])
    again.set_state(state)
    for a, b in zip(expected, [next(again) for _ in range(3)]):
      np.testing.assert_array_equal(a["cube"], b["cube"])
  finally:
    again.close()
  # One finite eval epoch over 2 workers covers every record exactly once.
  ev = pipeline.make_pipeline(_cfg(synth_dir, train=False, num_epochs=1, drop_remainder=False),
                              process_index=0, process_count=1)
  try:
    keys = [k for b in ev for k in b["key"]]
  finally:
    ev.close()
  assert sorted(keys) == [f"rec-{i:04d}" for i in range(40)]
