"""Logical axis vocabulary (model side) and, later, mesh rules (launcher side)."""
