"""Public readers of Sentinel-2 inputs: each returns (cube [C, H, W], meta) with the names of
the cube's planes in `meta["bands"]`, ready for `SpectralGPT.embed(cube, bands=meta["bands"])`.

    from data_pipelines.readers import read_geotiff, read_bigearthnet_patch
    cube, meta = read_geotiff("tile.tif")                  # names from the band descriptions
    cube, meta = read_geotiff("eurosat.tif", "eurosat")    # or a band set / comma list
    cube, meta = read_bigearthnet_patch("S2A_MSIL2A_..._87_48")   # float32 DN, 120 x 120

Both raise `BadInputError` naming the file and the field at fault. rasterio (the `geo` extra)
is imported on the first read. Also exported by `spectralgpt_jax.inference`.
"""

from data_pipelines.bigearthnet import list_bigearthnet_patches, read_bigearthnet_patch
from data_pipelines.errors import BadInputError
from data_pipelines.geotiff import read_geotiff

__all__ = ["read_geotiff", "read_bigearthnet_patch", "list_bigearthnet_patches",
           "BadInputError"]
