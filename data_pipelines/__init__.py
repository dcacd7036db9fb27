"""Sentinel-2 data pipelines for spectralgpt-jax: schema, TFRecord shards, grain streaming.

Submodules are imported explicitly (`from data_pipelines import pipeline`); importing the
package itself loads nothing heavy.
"""
