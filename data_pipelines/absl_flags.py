"""grain's worker processes read absl flags, which only `absl.app.run` marks as parsed."""

from __future__ import annotations


def ensure_parsed() -> None:
  """Marks absl's global FLAGS as parsed (outside `app.run`: CLIs, pytest, notebooks)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
