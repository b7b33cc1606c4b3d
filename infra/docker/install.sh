#!/bin/sh
# Install Signoff into its own virtual environment. The image's build stage runs exactly this
# (infra/Dockerfile), and tests/infra runs it in a fresh virtual environment.
#
#   install.sh SOURCE [VENV]
#     SOURCE  a checkout of this repository (the directory with pyproject.toml) or a wheel
#     VENV    where the environment goes (default /opt/signoff); must not exist yet
#
# pip takes its index and options from the usual PIP_* variables and pip.conf; nothing else is
# downloaded. The result runs `signoff` with no compiler, git or network at run time.
set -eu

source="${1:?usage: install.sh SOURCE [VENV]}"
venv="${2:-/opt/signoff}"
python="${PYTHON:-python3}"   # a Python with pip; the environment gets its version

if [ -e "$venv" ]; then
  echo "install.sh: $venv exists already; give a new directory" >&2
  exit 1
fi

# The environment gets no pip of its own: the installing Python's pip (>= 22.3) fills it.
"$python" -m venv --without-pip "$venv"
"$python" -m pip --python "$venv/bin/python" install --no-cache-dir --disable-pip-version-check \
  --quiet "$source"
# The console script and its imports work (a missing dependency fails the build here).
"$venv/bin/signoff" --help >/dev/null
"$venv/bin/python" -c "import api.app, workflows.worker, policies"
echo "install.sh: signoff installed in $venv"
