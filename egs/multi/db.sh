# Where each corpus is, as distributed (the layouts 'speecheq prepare <corpus> --help' reads).
# A corpus whose variable is empty is skipped by './run.sh --mode real'. Each variable can be
# set here or from the environment (CASIA=/data/casia EMODB=/data/emodb ./run.sh --mode real);
# a relative path is taken from the recipe folder.
CASIA=${CASIA:-}
EMODB=${EMODB:-}
RAVDESS=${RAVDESS:-}
CREMAD=${CREMAD:-}
ESD=${ESD:-}
IEMOCAP=${IEMOCAP:-}
