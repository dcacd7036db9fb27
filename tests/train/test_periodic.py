"""The loop's one timing rule (`periodic.itstime`) against the step sets it must give."""

import pytest

from spectralgpt_jax.train import periodic


def _times(every, total, **kw):
  return [s for s in range(1, total + 1) if periodic.itstime(s, every, total, **kw)]


@pytest.mark.parametrize("every,total", [(1, 5), (3, 10), (4, 8), (7, 3), (5, 12)])
def test_every_nth_step_and_the_last(every, total):
  multiples = list(range(every, total + 1, every))
  assert _times(every, total) == sorted(set(multiples) | {total})
  assert _times(every, total, last=False) == multiples
  assert _times(every, total, first=True) == sorted(set(multiples) | {1, total})


@pytest.mark.parametrize("every", [0, -1])
def test_no_period_means_only_the_ends(every):
  assert _times(every, 6) == [6]
  assert _times(every, 6, last=False) == []
  assert _times(every, 6, first=True, last=False) == [1]


def test_an_action_is_due_by_the_rule_or_at_a_stop():
  class Every3(periodic.Action):
    every = 3

  class Saving(periodic.Action):
    every, on_stop = 3, True

  assert [s for s in range(1, 8) if Every3().due(s, 7)] == [3, 6, 7]
  assert Every3().due(4, 7, stopping=True) is False
  assert Saving().due(4, 7, stopping=True) and not Saving().due(4, 7)
