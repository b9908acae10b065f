# Sourced by ser.sh: put speecheq (tools/venv) on PATH, setting the environment up if needed.
speecheq_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$speecheq_root/tools/setup.sh"
export PATH="$speecheq_root/tools/venv/bin:$PATH"
export PYTHONUNBUFFERED=1
