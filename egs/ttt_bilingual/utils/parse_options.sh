#!/usr/bin/env bash
# Usage (sourced, after the defaults of all options are set):
#   . utils/parse_options.sh
# Parses the leading "--name value" / "--name=value" arguments of "$@" into the shell
# variable "name" (with "-" turned into "_"), stopping at the first argument that does
# not start with "--" (a lone "--" is consumed and also ends the options); the rest
# stays in "$@". Rules:
#   --help | -h     print $help_message and exit 0
#   --config FILE   source FILE (shell "name=value" lines)
#   --name value    "name" must already be defined (else: invalid option, exit 1); if its
#                   value is true or false the new value must be true or false too.
# Values may contain blanks or be empty. Works under "set -euo pipefail".
# Internal variables start with _parse_options_ and are unset at the end.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "$0: this file must be sourced: . utils/parse_options.sh" >&2
  exit 1
fi

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h)
      printf '%s\n' "${help_message:-No help message available.}"
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      _parse_options_name=${1%%=*}
      _parse_options_value=${1#*=}
      shift
      ;;
    --*)
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 1
      fi
      _parse_options_name=$1
      _parse_options_value=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac

  _parse_options_option=${_parse_options_name}
  _parse_options_name=${_parse_options_name#--}
  _parse_options_name=${_parse_options_name//-/_}

  if [ "${_parse_options_name}" = config ]; then
    if [ ! -f "${_parse_options_value}" ]; then
      echo "$0: config file '${_parse_options_value}' not found" >&2
      exit 1
    fi
    # shellcheck disable=SC1090
    . "${_parse_options_value}"
    continue
  fi

  if ! [[ ${_parse_options_name} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] \
    || [ -z "${!_parse_options_name+defined}" ]; then
    echo "$0: invalid option ${_parse_options_option}" >&2
    exit 1
  fi
  case "${!_parse_options_name}" in
    true | false)
      if [ "${_parse_options_value}" != true ] && [ "${_parse_options_value}" != false ]; then
        echo "$0: option ${_parse_options_option} takes true or false, got '${_parse_options_value}'" >&2
        exit 1
      fi
      ;;
  esac
  printf -v "${_parse_options_name}" '%s' "${_parse_options_value}"
done
unset _parse_options_name _parse_options_option _parse_options_value
