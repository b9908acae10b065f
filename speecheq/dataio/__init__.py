"""Reading features for training and decoding: CMVN, datasets, collation and batch samplers."""
