"""A detection example: generated shapes (COCO JSON + images) and a colour-blob box detector in NumPy."""
