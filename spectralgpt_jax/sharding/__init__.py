"""Logical axis names (model side); mesh, rule presets, train-state shardings (launch side)."""
