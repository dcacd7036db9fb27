"""orbax 0.12.8 cannot hold checkpoints at s3:// (it writes a relative local folder "s3:/..."):
`train --workdir s3://...` stops at once with one line naming the URL and the fix, before
anything starts, and every checkpoint read or write (export, evaluate's pretrained, import)
refuses such a URL the same way. gs:// and local paths pass."""

import os

import pytest

from spectralgpt_jax import __main__ as entry
from spectralgpt_jax import checkpoints

URL = "s3://bucket/runs/tiny"


def test_train_with_an_s3_workdir_stops_before_anything_starts(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  rc = entry.main(["train", "--config", os.path.abspath(
      os.path.join(os.path.dirname(__file__), "..", "..", "configs", "pretrain", "tiny_s2.py")),
                   "--workdir", URL])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1 and len(err) == 1, err
  assert err[0].startswith(f"train failed: {URL}: orbax writes checkpoints to local paths and "
                           "gs:// only") and "use a gs:// workdir" in err[0], err
  assert not any(tmp_path.iterdir())                     # no local "s3:" folder, no lock


@pytest.mark.parametrize("call", [
    lambda: checkpoints.absolute(URL),                  # train.loop, the run's manager
    lambda: checkpoints.latest_step(URL),
    lambda: checkpoints.read_checkpoint(URL),           # export, evaluate's pretrained
    lambda: checkpoints.write_checkpoint(URL, {"w": 0}, {}),   # import
])
def test_checkpoint_reads_and_writes_refuse_s3(call):
  with pytest.raises(ValueError, match=r"^s3://bucket/runs/tiny: orbax writes checkpoints"):
    call()


def test_gs_and_local_locations_pass(tmp_path):
  assert checkpoints.check_location("gs://bucket/run") == "gs://bucket/run"
  assert checkpoints.absolute("gs://bucket/run") == "gs://bucket/run"
  assert checkpoints.absolute(tmp_path / "run") == str(tmp_path / "run")
