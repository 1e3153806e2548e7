#!/usr/bin/env bash
# Installs os-ken (PyPI, in a venv) and the simple_switch_13 learning-switch app
# (dropped from os-ken >= 2.0; taken from the os-ken 1.4.1 wheel) under
# $FERROFLOW_PY_DIR (default /var/lib/ferroflow/python). Idempotent.
set -euo pipefail
DIR=${FERROFLOW_PY_DIR:-/var/lib/ferroflow/python}
if [ ! -x "$DIR/venv/bin/python" ] || ! "$DIR/venv/bin/python" -c "import os_ken" 2>/dev/null; then
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install -q --disable-pip-version-check "os-ken==4.2.2"
fi
APP=$DIR/apps/simple_switch_13.py
if [ ! -f "$APP" ]; then
    mkdir -p "$DIR/apps" "$DIR/dl"
    "$DIR/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$DIR/dl" "os-ken==1.4.1"
    "$DIR/venv/bin/python" - "$DIR/dl/os_ken-1.4.1-py3-none-any.whl" "$APP" <<'PY'
import sys, zipfile
src = zipfile.ZipFile(sys.argv[1]).read("os_ken/app/simple_switch_13.py").decode()
open(sys.argv[2], "w").write(src)
PY
fi
echo "setup-osken: $("$DIR/venv/bin/python" -c 'import os_ken, sys; print("os-ken", os_ken.__version__ if hasattr(os_ken, "__version__") else "?", "python", sys.version.split()[0])') app $APP"
