#!/usr/bin/env bash
# Installs what building and testing swift-zmtp needs on Debian/Ubuntu, skipping what is present:
#   build:  libsodium-dev, pkg-config
#   tests:  python3 with pyzmq (libzmq peers for the interop tests); gcc, libzmq3-dev and iproute2
#           for the benchmark smoke run (bench/run-pubsub.sh --quick)
# Usage: scripts/install-deps.sh [build|test]   (default: test, which includes build)
set -euo pipefail
what=${1:-test}
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! pkg-config --exists libsodium 2>/dev/null; then
    echo "install-deps: installing libsodium-dev and pkg-config" >&2
    apt_install libsodium-dev pkg-config
fi

if [ "$what" = test ]; then
    python=${ZMTP_PYTHON:-python3}
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "install-deps: installing python3 and python3-zmq" >&2
        apt_install python3 python3-zmq
    fi
    if ! "$python" -c 'import zmq' 2>/dev/null; then
        echo "install-deps: installing pyzmq for $python" >&2
        "$python" -m pip install -q pyzmq 2>/dev/null \
            || "$python" -m pip install -q --break-system-packages pyzmq 2>/dev/null \
            || apt_install python3-zmq
    fi
    if ! pkg-config --exists libzmq 2>/dev/null || ! command -v gcc >/dev/null 2>&1 || ! command -v ss >/dev/null 2>&1; then
        echo "install-deps: installing gcc, libzmq3-dev and iproute2 (benchmark smoke run)" >&2
        apt_install gcc make libzmq3-dev iproute2
    fi
    "$python" -c 'import zmq; print("install-deps: pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())' >&2
fi
