# Environment of the recipe: the project's venv, our clean-room utils/, quiet offline espnet.
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export MAIN_ROOT
if [ ! -x "${MAIN_ROOT}/tools/venv/bin/python" ]; then
    echo "path.sh: ${MAIN_ROOT}/tools/venv is missing; run ${MAIN_ROOT}/tools/setup_env.sh" >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/venv/bin/activate"
export PATH="${MAIN_ROOT}/egs/ttt_bilingual/utils:${PATH}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export NLTK_DATA="${MAIN_ROOT}/tools/nltk_data"
export PYTHONDONTWRITEBYTECODE=1
