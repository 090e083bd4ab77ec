"""The seed's PyTorch code, used only as the side-by-side reference in benchmarks."""
