"""Batch classification of large image collections: the same table in-process or on a Ray cluster.

- :mod:`edgecls.runtime.batch.rows`: the result table's schema and the row of one image (the fields of
  ``edgecls run --json`` plus error rows), shared by both paths.
- :mod:`edgecls.runtime.batch.local`: in-process, through the folder runner (no Ray import).
- :mod:`edgecls.runtime.batch.on_ray`: Ray Data reads the bytes, an actor pool of Classifiers labels them.
- :mod:`edgecls.runtime.batch.writers`: Parquet (and JSON Lines) writing.
"""
