"""Training data: prepare (fragments, filters, dedup, splits, shards) and the dataset reader."""
