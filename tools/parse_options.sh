# Kaldi-style option parsing for recipe scripts. Source it after setting defaults:
#
#   stage=1
#   nj=2
#   . ../../tools/parse_options.sh
#
# "--foo-bar VALUE" or "--foo-bar=VALUE" sets the shell variable foo_bar, which must already
# be defined (an unknown option is an error). An option whose default is true or false takes
# only true or false; one whose default is a whole number takes only whole numbers. "--help"
# calls the function usage if the script defines one, else prints $help_message. Parsing stops
# at the first argument that is not an option; the rest stay in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      if declare -F usage >/dev/null; then usage; else printf '%s\n' "${help_message:-Usage: $0 [options]}"; fi
      exit 0
      ;;
    --*=*)
      _option=${1%%=*}
      _value=${1#*=}
      _consumed=1
      ;;
    --*)
      _option=$1
      _value=${2-}
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
  if [ "$_consumed" = 2 ] && [ $# -lt 2 ]; then
    echo "$0: option $_option needs a value" >&2
    exit 1
  fi
  case "${!_name}" in
    true | false)
      if [ "$_value" != true ] && [ "$_value" != false ]; then
        echo "$0: option $_option takes true or false, got '$_value'" >&2
        exit 1
      fi
      ;;
    *)
      if [[ ${!_name} =~ ^-?[0-9]+$ ]] && [[ ! $_value =~ ^-?[0-9]+$ ]]; then
        echo "$0: option $_option takes a whole number, got '$_value'" >&2
        exit 1
      fi
      ;;
  esac
  printf -v "$_name" '%s' "$_value"
  shift "$_consumed"
done
unset _option _value _consumed _name
