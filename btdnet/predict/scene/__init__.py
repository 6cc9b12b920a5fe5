"""Scene mode: a whole scene at native resolution, tile by tile.

- :mod:`~btdnet.raster.source` reads the scene window by window (rasterio);
- :mod:`btdnet.tiling` places the tiles and weighs their overlaps;
- :mod:`~btdnet.predict.scene.rows` runs each row of tiles and writes it as a part;
- :mod:`~btdnet.predict.scene.writer` streams the parts into the rasters and polygons;
- :mod:`~btdnet.predict.scene.objects` labels the objects, strip by strip;
- :mod:`~btdnet.predict.scene.state` proves what ``--resume`` may reuse and locks the parts;
- :mod:`~btdnet.predict.scene.pipeline` ties them together (``predict_scene``);
- :mod:`~btdnet.predict.scene.cli` is the ``btdnet-predict --tile`` front end.
"""
