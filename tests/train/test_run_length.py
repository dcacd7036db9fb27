"""config.num_examples unset means the shard manifest's num_records; the log says which."""

import json
import logging

import pytest

from configs.pretrain import spectralgpt_plus_base_128, tiny_s2
from spectralgpt_jax.train import run_length


def _shards(tmp_path, n=37):
  (tmp_path / "manifest.json").write_text(json.dumps(
      {"num_records": n, "shards": [{"file": "s-00000-of-00001.tfrecord", "records": n}]}))
  return str(tmp_path)


def test_num_examples_from_the_manifest_drives_total_steps(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  c = spectralgpt_plus_base_128.get_config()
  c.data.paths = _shards(tmp_path, 8192)
  assert c.num_examples is None and c.total_steps is None
  run_length.resolve_num_examples(c)
  assert c.num_examples == 8192 and c.total_steps == 100 * 8192 // 4096
  assert c.optim.warmup_steps == c.total_steps * 20 // 100
  assert "num_examples 8192 from " + str(tmp_path / "manifest.json") in caplog.text


def test_explicit_num_examples_wins_and_the_log_says_so(tmp_path, caplog):
  caplog.set_level(logging.INFO, logger="absl")
  c = spectralgpt_plus_base_128.get_config()
  c.data.paths = _shards(tmp_path, 8192)
  c.num_examples = 4096
  run_length.resolve_num_examples(c)
  assert c.num_examples == 4096 and "from the config" in caplog.text and "lists 8192" in caplog.text


def test_unknown_length_is_one_clear_error():
  c = spectralgpt_plus_base_128.get_config()
  c.data.source = "synthetic"
  with pytest.raises(ValueError, match="config.num_examples is unset"):
    run_length.resolve_num_examples(c)
  t = tiny_s2.get_config("synthetic")  # sets total_steps itself: no number needed
  run_length.resolve_num_examples(t)
  assert t.total_steps == 300
