# Kaldi-style option parsing for recipe scripts. Source it after setting defaults:
#
#   stage=1
#   nj=2
#   . ../../tools/parse_options.sh
#
# "--foo-bar VALUE" or "--foo-bar=VALUE" sets the shell variable foo_bar, which must already
# be defined (an unknown option is an error). "--help" prints $help_message. Parsing stops at
# the first argument that is not an option; the rest stay in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      printf '%s\n' "${help_message:-Usage: $0 [options]}"
      exit 0
      ;;
    --*=*)
      _option=${1%%=*}
      _value=${1#*=}
      _consumed=1
      ;;
    --*)
      _option=$1
      if [ $# -lt 2 ]; then
        echo "$0: option $_option needs a value" >&2
        exit 1
      fi
      _value=$2
      _consumed=2
      ;;
    *)
      break
      ;;
  esac
  _name=${_option#--}
  _name=${_name//-/_}
  if [[ ! $_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_name+set}" ]; then
    echo "$0: unknown option $_option (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$_name" '%s' "$_value"
  shift "$_consumed"
done
unset _option _value _consumed _name
