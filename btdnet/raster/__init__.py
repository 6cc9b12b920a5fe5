"""Raster reading shared by the referring and closed-set tools: nothing of any model.

- :mod:`~btdnet.raster.bands`: which bands the model sees and how values become 0..255;
- :mod:`~btdnet.raster.geo`: the georeference of a raster and its GeoTIFF outputs (rasterio);
- :mod:`~btdnet.raster.image_io`: a user's image file to 8-bit RGB, masks to PNG;
- :mod:`~btdnet.raster.source`: a scene read window by window with its valid-pixel mask.
"""
