#!/usr/bin/env bash
# Provision a Python venv holding the PyPI `milvus` package: a real Milvus 2.3.5 standalone
# server (REST v1 only) used by tests/milvus_v1.rs, tests/e2e.rs and the demo. Shared by the
# fixture (devkit/src/milvus.rs) and .ci/run, so both use the same directory.
#
#   bash devkit/scripts/provision-milvus.sh VENV_DIR
#
# Exit status: 0 = VENV_DIR/bin/milvus-server is ready; 2 = python3, venv or PyPI is not
# available (the caller decides between skip and fail); anything else = a real failure.
# A file lock (VENV_DIR.lock) keeps parallel test binaries from building the venv twice.
set -euo pipefail

venv=${1:?usage: provision-milvus.sh VENV_DIR}
version=2.3.5
marker="$venv/.provisioned-milvus-$version"
say() { echo "provision-milvus: $*" >&2; }

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    say "waiting for lock $venv.lock"
    flock 9
else
    say "flock(1) not found: provisioning without a lock"
fi

# The package ships the server as .lzma files that `milvus-server` decompresses (250 MB,
# about 7 s of CPU) into every data directory it starts. Do it once, here; the launcher
# (milvus_launch.py) links each data directory's bin/ to this copy.
home="$venv/milvus-home"
unpack() {
    if [[ ! -x $home/bin/milvus ]]; then
        say "unpacking the server binaries into $home/bin (once)"
        rm -rf "$home"
        "$venv/bin/python3" -c 'import sys, milvus; milvus._initialize_data_files(sys.argv[1])' "$home"
    fi
}

if [[ -f $marker && -x $venv/bin/milvus-server ]]; then
    unpack
    say "$venv already holds milvus==$version"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
    say "python3 not found"
    exit 2
fi
say "creating venv $venv with $(python3 --version 2>&1) ($(command -v python3))"
rm -rf "$venv"
if ! python3 -m venv "$venv"; then
    say "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    rm -rf "$venv"
    exit 2
fi
say "pip install milvus==$version (about 60 MB from PyPI)"
if ! "$venv/bin/python3" -m pip install --disable-pip-version-check --no-input --progress-bar off "milvus==$version"; then
    say "pip install milvus==$version failed (no PyPI access?)"
    rm -rf "$venv"
    exit 2
fi
"$venv/bin/milvus-server" --help >/dev/null
unpack
touch "$marker"
say "ready: $venv/bin/milvus-server"
