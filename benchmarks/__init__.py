"""segmint benchmarks: each figure measured against a peer or floor in the same run."""
