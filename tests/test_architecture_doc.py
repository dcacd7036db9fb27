"""docs/architecture.md's rooms table says what tests/test_layout.py enforces, row for row.

The table's "may import" column names modules relative to `spectralgpt_jax` (`models` is
`spectralgpt_jax.models`), except the two other top-level packages (`data_pipelines...`,
`configs...`) and `spectralgpt_jax` alone; "nothing" is the empty list.
"""

import re

import pytest

from test_layout import ALLOWED, PKG, ROOT

DOC = ROOT / "docs" / "architecture.md"
TOP_LEVEL = (PKG, "data_pipelines", "configs")


def _doc_rooms() -> dict[str, tuple[str, ...]]:
  """room path (as ALLOWED spells it) -> the project modules its row says it may import."""
  rows = {}
  for line in DOC.read_text().splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 3 or not re.fullmatch(r"`[^`]+`", cells[0]):
      continue
    room = cells[0].strip("`")
    names = re.findall(r"`([^`]+)`", cells[2])
    full = []
    for name in names:
      full.append(name if name.split(".")[0] in TOP_LEVEL else f"{PKG}.{name}")
    rows[room] = tuple(full)
  return rows


def _allowed_key(room: str) -> str:
  """The doc writes package rooms with a trailing slash; ALLOWED may key them without."""
  if room in ALLOWED:
    return room
  return room.rstrip("/")


def test_doc_lists_every_room_and_no_other():
  doc = {_allowed_key(r) for r in _doc_rooms()}
  assert doc, f"no rooms table found in {DOC}"
  assert set(ALLOWED) - doc == set(), f"rooms missing from {DOC.name}: {set(ALLOWED) - doc}"
  assert doc - set(ALLOWED) == set(), f"{DOC.name} lists rooms tests/test_layout.py does not know: {doc - set(ALLOWED)}"


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_doc_imports_match_layout_rules(room):
  doc = {_allowed_key(r): names for r, names in _doc_rooms().items()}
  assert sorted(doc.get(room, ())) == sorted(ALLOWED[room]), (
      f"{DOC.name} says room {room} may import {sorted(doc.get(room, ()))}; "
      f"tests/test_layout.py allows {sorted(ALLOWED[room])}")
