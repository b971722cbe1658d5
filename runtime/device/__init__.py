"""A deployed model's life on the device (torch- and onnx-free): the bundle checked against its manifest, releases
side by side under a prefix with a ``current`` link, the systemd unit and its settings, ``edgecls update``; and
what proves a model computes here what it computed where it was exported: its golden file (``golden_file``, the
one reader) and ``edgecls selftest`` (``selftest``)."""
