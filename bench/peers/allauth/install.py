"""Install the allauth peer's venv, the way `make bench` installs the first peer's.

    python3 bench/peers/allauth/install.py      # any Python 3.11+; stdlib only

Creates ``bench/peers/allauth/.venv`` from ``requirements.txt`` (PyPI, pip) unless the venv
already holds exactly that file's pins (a marker with its SHA-256, as ``ensure_peer_venv``
in bench/run.py keeps for ``bench/peers/.venv``). Importable: ``ensure_venv()`` returns the
venv's python.
"""
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
PY = VENV / "bin" / "python"
GUNICORN = VENV / "bin" / "gunicorn"
REQUIREMENTS = HERE / "requirements.txt"


def ensure_venv(log=print) -> Path:
    marker = VENV / ".installed"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == digest and PY.is_file():
        return PY
    log("creating the allauth peer's venv (bench/peers/allauth/.venv) from PyPI")
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    marker.write_text(digest)
    return PY


if __name__ == "__main__":
    print(ensure_venv())
