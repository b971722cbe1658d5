"""Data: labelled image folders, built-in sets, splits and augmentation (numpy + OpenCV; no torch)."""
