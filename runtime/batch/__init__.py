"""Batch classification of large image collections: the same table in-process or on a Ray cluster.

- :mod:`edgecls.runtime.batch.classify`: what the command does (pyarrow checked, then in-process or Ray).
- :mod:`edgecls.runtime.batch.job`: what a job is given (model, inputs, RESULTS, batch size, actors).
- :mod:`edgecls.runtime.batch.inputs`: INPUT arguments -> one list of image files (local or URIs).
- :mod:`edgecls.runtime.batch.table`: the result table's schema and rows (``run --json`` fields + error rows).
- :mod:`edgecls.runtime.batch.local`: in-process, through the runtime's runner (no Ray import).
- :mod:`edgecls.runtime.batch.on_ray`: Ray Data reads the bytes, an actor pool of Classifiers labels them.
- :mod:`edgecls.runtime.batch.reads`: Ray's read tasks: each input's bytes through the guarded reader, or its error.
- :mod:`edgecls.runtime.batch.writers`: Parquet (and JSON Lines) writing.
- :mod:`edgecls.runtime.batch.output`: RESULTS checked, locked while a job runs, published whole.
- :mod:`edgecls.runtime.batch.watch`, :mod:`edgecls.runtime.batch.watch_parts`: ``--watch``, the table grown a
  Parquet part at a time as files arrive.
"""
