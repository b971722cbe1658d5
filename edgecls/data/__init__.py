"""Data: labelled image folders, built-in sets, seeded splits and augmentation.

numpy + OpenCV only (scikit-learn lazily, for builtin:digits): the train, export and eval stages all read
data through here, and none of it imports torch. ``load`` turns a data spec into splits, ``eval_set`` picks
the images eval scores, ``folders`` / ``builtin`` / ``imageset`` / ``splits`` / ``augment`` are the parts.
"""
