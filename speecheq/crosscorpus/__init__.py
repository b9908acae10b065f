"""Cross-corpus experiments (Kim et al. 2017): plan, run and score a matrix of training sets by
test corpora, for several task sets (:mod:`.plan`, :mod:`.run`, :mod:`.matrix`)."""
