"""Shared pieces of the `ingest_options` hooks (CLI flags as a dict -> ingest options)."""

from __future__ import annotations

from typing import Any


def expect_shape(flags: dict[str, Any]) -> tuple[int, int] | None:
  """--expect_shape "H,W" -> (H, W) (None when not given)."""
  text = flags.get("expect_shape")
  return tuple(int(v) for v in text.split(",")) if text else None


def common(flags: dict[str, Any]) -> dict[str, Any]:
  """--no_harmonize and --dtype, which every GeoTIFF-reading source takes."""
  return {"harmonize": not flags["no_harmonize"], "store_dtype": flags["dtype"]}
