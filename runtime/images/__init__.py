"""Images in: from a file or bytes someone else chose to BGR pixels, bounded before any decoder runs.

file_guard (regular files only, under a size cap), format (which format bytes are, from their signature),
prescan/ (an image's declared size and structure, bounded), decode (the one decoder: bytes -> BGR pixels),
files (the one folder walk, and the labelled class tree).
"""
