#!/usr/bin/env bash
# Install what image builds need when it is missing (idempotent; a second run takes
# milliseconds): buildah, skopeo, docker-registry and debootstrap (Debian packages), and
# crane (go-containerregistry) built with 'go install' into $SCANFLOW_TOOLS_DIR.
set -euo pipefail
TOOLS_DIR=${SCANFLOW_TOOLS_DIR:-$HOME/.cache/scanflow/bin}
CRANE_VERSION=v0.22.1

missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)

if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { echo "error: apt-get is missing; install ${missing[*]}" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "error: installing ${missing[*]} needs root" >&2; exit 1; }
    echo "installing ${missing[*]} (Debian packages)..."
    # docker-registry is not started by its package: tests run their own, on 127.0.0.1
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >/tmp/scanflow-image-tools.log 2>&1 \
        || { tail -20 /tmp/scanflow-image-tools.log >&2; exit 1; }
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
fi

if ! command -v crane >/dev/null 2>&1 && [ ! -x "$TOOLS_DIR/crane" ]; then
    command -v go >/dev/null 2>&1 || { echo "error: crane needs Go to build ('go install')" >&2; exit 1; }
    echo "building crane $CRANE_VERSION into $TOOLS_DIR..."
    mkdir -p "$TOOLS_DIR"
    GOBIN="$TOOLS_DIR" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi
