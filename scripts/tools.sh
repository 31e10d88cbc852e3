#!/usr/bin/env bash
# Developer and test tools into var/tools (idempotent; CI-safe, no prompts):
#   var/tools/bin/grpcurl   from the Go module proxy
#   var/tools/bin/helm      from the Go module proxy (the Helm CLI, built from its module)
#   var/tools/venv          a Python venv with kubernetes-validate (offline Kubernetes schemas),
#                           pinned in scripts/chart-tools.requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/var/tools/bin"
mkdir -p "$bin"

GRPCURL_VERSION=v1.9.3
HELM_VERSION=v3.22.0

if [ ! -x "$bin/grpcurl" ]; then
  echo "installing grpcurl $GRPCURL_VERSION into var/tools/bin"
  GOBIN="$bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
fi

# The helm built by `go install` reports its version from the module (v3.22), not from ldflags.
if [ ! -x "$bin/helm" ] || [ "$(cat "$bin/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  echo "installing helm $HELM_VERSION into var/tools/bin (a few minutes the first time)"
  GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" > "$bin/.helm-version"
fi

venv="$PWD/var/tools/venv"
requirements=scripts/chart-tools.requirements.txt
if [ ! -x "$venv/bin/kubernetes-validate" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
  echo "installing kubernetes-validate into var/tools/venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "python3 -m venv failed: install Python 3 with venv (e.g. apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
