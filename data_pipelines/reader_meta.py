"""The metadata dict the readers return, with the band names under "bands".

Version 0.1.0 named that key "band_names"; reading it still works, with a DeprecationWarning,
until the next release.
"""

from __future__ import annotations

import warnings
from typing import Any

DEPRECATED_KEYS = {"band_names": "bands"}


class ReaderMeta(dict):
  """A plain dict (JSON-serialisable) that answers the deprecated "band_names" key."""

  def _renamed(self, key: Any) -> Any:
    new = DEPRECATED_KEYS.get(key) if isinstance(key, str) else None
    if new is not None and key not in self.keys():
      warnings.warn(f"reader metadata key {key!r} is deprecated and will be removed in the "
                    f"next release; use {new!r}", DeprecationWarning, stacklevel=3)
      return new
    return key

  def __getitem__(self, key: Any) -> Any:
    return super().__getitem__(self._renamed(key))

  def get(self, key: Any, default: Any = None) -> Any:
    return super().get(self._renamed(key), default)
