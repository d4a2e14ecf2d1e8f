#!/bin/sh
# Serve the allauth peer the way bench/run.py serves the first one (its Server class):
#   DATABASE_URL=postgres://... SECRET_KEY=... bench/peers/allauth/serve.sh PORT [WORKERS] [more gunicorn args]
# The database must be migrated and seeded first (manage.py migrate; prepare.py seed).
set -e
cd "$(dirname "$0")"
port=${1:?port}; workers=${2:-$(nproc)}
shift; [ $# -gt 0 ] && shift
exec .venv/bin/gunicorn allauth_project.wsgi:application -w "$workers" -b "127.0.0.1:$port" \
  --log-level warning --graceful-timeout 5 --timeout 60 "$@"
