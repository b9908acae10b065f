"""From features on disk to padded batches, for training and decoding: datasets, collation and
length-bucketed batch samplers."""
