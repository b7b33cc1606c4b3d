#!/bin/sh
# The image's entrypoint: one image, three roles. Configured by SIGNOFF_* variables only.
#
#   api         the HTTP API on SIGNOFF_HOST:SIGNOFF_PORT (default 0.0.0.0:8000)
#   worker      the Temporal worker (workflows and activities)
#   db-upgrade  apply the ledger's migrations, then exit (API and worker also migrate at
#               start, behind the same lock; run this first to roll out a release)
#   signoff ... any other signoff command, e.g. `signoff policy check /policy/policy.yaml`
#   anything else is run as given (a shell for debugging: `sh`)
#
# Secrets may come as files: SIGNOFF_<NAME>_FILE=/run/secrets/x sets SIGNOFF_<NAME> to the
# file's content (compose secrets, mounted Kubernetes Secrets); never both at once.
#
# `exec` makes signoff PID 1's successor, so SIGTERM from the container runtime reaches it:
# the API drains (new calls 503 with Retry-After, calls in flight finish) and the worker stops
# polling and lets its running activities finish (SIGNOFF_WORKER_SHUTDOWN_GRACE_S).
set -eu

for file_var in $(env | sed -n 's/^\(SIGNOFF_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  eval "file=\${${file_var}_FILE}"
  if eval "[ -n \"\${${file_var}+set}\" ]"; then
    echo "entrypoint: both ${file_var} and ${file_var}_FILE are set; set one" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "entrypoint: ${file_var}_FILE names $file, which cannot be read" >&2
    exit 1
  fi
  value="$(cat "$file")"
  export "${file_var}=${value}"
  unset "${file_var}_FILE"
done
unset file_var file value

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
  api)
    exec signoff api --host "${SIGNOFF_HOST:-0.0.0.0}" --port "${SIGNOFF_PORT:-8000}" "$@"
    ;;
  worker)
    exec signoff worker "$@"
    ;;
  db-upgrade)
    exec signoff db upgrade "$@"
    ;;
  signoff)
    exec signoff "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
