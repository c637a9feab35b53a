"""A PyTorch image classifier adapter (a small CNN): CPU-runnable, ready for a GPU (``pip install -e '.[torch]'``)."""
