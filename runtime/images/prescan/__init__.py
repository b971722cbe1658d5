"""The pre-scan: an image's declared size and structure, read and bounded before any decoder sees its bytes."""
