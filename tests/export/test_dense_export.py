"""Dense models out and back in: segmenters and change detectors export with the official
SegMunich / OSCD head keys and a manifest (task, classes, tile protocol), import to the same
params, and refuse what does not fit with one line naming the file and the cause."""

import json
import shutil

import numpy as np
import pytest
from flax import traverse_util

from data_pipelines import dense

import dense_helpers as D
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.export import from_torch, to_torch, torch_io
from spectralgpt_jax.export.to_torch import ExportError

pytest.importorskip("torch")


def _flat(params):
  return traverse_util.flatten_dict(dict(params))


def _assert_same(a, b):
  a, b = _flat(a), _flat(b)
  assert set(a) == set(b)
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg="/".join(k))


def _official_keys(official_keys_file, section: str) -> set[str]:
  """Non-block keys of one model section of the official key dump."""
  keys, inside = set(), False
  for line in official_keys_file.read_text().splitlines():
    if line.startswith("###"):
      inside = section in line
      continue
    if inside and line and not line.startswith("#"):
      keys.add(line.split("\t")[0])
  return keys


@pytest.fixture(scope="module")
def cd_run(tmp_path_factory):
  return D.write_dense_run(tmp_path_factory.mktemp("cd"), D.TINY_CD, tiles=(32, 24))


@pytest.fixture(scope="module")
def cd_pth(cd_run, tmp_path_factory):
  """The change detector exported once as .pth (+ manifest); tests change copies of it."""
  return to_torch.export_checkpoint(cd_run[0], tmp_path_factory.mktemp("cd_pth") / "cd.pth")


def _copy(res, folder):
  """A copy of an export (weights + manifest) in `folder`: its weights path."""
  for path in (res.weights, res.manifest):
    shutil.copy(path, folder / path.name)
  return folder / res.weights.name


def test_change_detector_round_trip_and_manifest(cd_run, official_keys_file, tmp_path):
  run, params, _ = cd_run
  out = tmp_path / "cd.safetensors"
  assert cli(["export", "--weights", str(run), "--out", str(out)]) == 0   # --target: dense
  res = to_torch.ExportResult(out, out.with_name(out.name + ".json"), {})
  state, _ = torch_io.load_state_dict(res.weights)
  # The head and encoder names are the official OSCD model's (blocks aside: another depth).
  ours = {k for k in state if not k.startswith("blocks.")}
  assert ours == _official_keys(official_keys_file, "### OSCD model")
  m = json.loads(res.manifest.read_text())
  assert (m["target"], m["task"], m["output"]) == ("dense", "change_detection",
                                                   "log_probabilities")
  assert m["classes"] == ["no change", "change"]       # from the run's data source
  assert m["tile"] == {"size": 32, "stride": 24, "num_dates": 2, "minmax_scope": "image"}
  assert m["constructor_kwargs"]["task"] == "change" and m["head"]["head"] == "official"
  conv, meta = from_torch.load_weights(res.weights)
  _assert_same(conv.params, params)
  assert conv.record["name"] == D.TINY_CD and conv.record["pyramid_channels"] == [32, 32, 64, 64]
  assert meta["tile"] == m["tile"] and meta["classes"] == m["classes"]


@pytest.mark.parametrize("head", ["official", pytest.param("pangaea", marks=pytest.mark.slow)])
def test_segmenter_round_trip_pth(tmp_path, head):
  extra = {"feature_layers": (0, 1, 1, 1)} if head == "pangaea" else {}
  run, params, _ = D.write_dense_run(tmp_path, D.TINY_SEG, seed=1, head=head, **extra)
  res = to_torch.export_checkpoint(run, tmp_path / "seg.pth", classes=dense.class_names)
  assert res.data["task"] == "segmentation" and res.data["classes"] == ["land", "water"]
  assert res.data["tile"]["size"] == 32 and res.data["tile"]["stride"] == 16  # the defaults
  step_dir, _, meta = from_torch.import_file(res.weights, tmp_path / "imported")
  from spectralgpt_jax import checkpoints
  back = checkpoints.read_checkpoint(step_dir)
  _assert_same(back.params, params)
  assert back.meta["task"] == "segmentation" and meta["model"]["head"] == head


def _one_line(excinfo, *needles):
  msg = str(excinfo.value)
  assert "\n" not in msg, msg
  for n in needles:
    assert n in msg, msg


def test_wrong_target_for_a_dense_model(cd_run, tmp_path):
  with pytest.raises(ExportError) as e:
    to_torch.export_checkpoint(cd_run[0], tmp_path / "x.pth", target="finetune")
  _one_line(e, "target 'finetune'", "--target dense")


def test_dense_file_into_the_wrong_kind(cd_pth):
  with pytest.raises(from_torch.WeightsImportError) as e:
    from_torch.load_weights(cd_pth.weights, model="mae_vit_tiny_patch8_32")
  _one_line(e, str(cd_pth.weights), "mae model")
  with pytest.raises(from_torch.WeightsImportError) as e:
    from_torch.load_weights(cd_pth.weights, num_classes=3)
  _one_line(e, "cannot change a dense")


def test_missing_head_keys_are_named(cd_pth, tmp_path):
  path = _copy(cd_pth, tmp_path)
  state, _ = torch_io.load_state_dict(path)
  del state["decoder.fuse_all.0.weight"]
  torch_io.save_pth(state, path, force=True)
  with pytest.raises(from_torch.WeightsImportError) as e:
    from_torch.load_weights(path)
  _one_line(e, str(path), "decoder.fuse_all.0.weight")


def test_dense_file_without_manifest_needs_the_model(cd_run, cd_pth, tmp_path):
  path = tmp_path / "cd.pth"
  shutil.copy(cd_pth.weights, path)                   # the weights alone
  with pytest.raises(from_torch.WeightsImportError) as e:
    from_torch.load_weights(path)
  _one_line(e, "pass the model")
  conv, _ = from_torch.load_weights(path, model=D.TINY_CD)   # widths from the tensors
  _assert_same(conv.params, cd_run[1])


@pytest.mark.slow
def test_inference_load_of_a_dense_file_without_manifest(cd_pth, tmp_path):
  from spectralgpt_jax.inference import load
  path = tmp_path / "cd.pth"
  shutil.copy(cd_pth.weights, path)
  m = load(path, model=D.TINY_CD)
  assert m.kind == "change" and m.meta["output"] == "log_probabilities"
  assert m.meta["tile"] == {"size": 32, "stride": 16, "num_dates": 2, "minmax_scope": "image"}
  assert m.meta["classes"] == ["class_0", "class_1"]
