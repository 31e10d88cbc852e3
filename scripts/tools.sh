#!/usr/bin/env bash
# Developer tools from the Go module proxy, into var/tools/bin (idempotent): grpcurl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/var/tools/bin"
mkdir -p "$bin"
if [ ! -x "$bin/grpcurl" ]; then
  echo "installing grpcurl into var/tools/bin"
  GOBIN="$bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
fi
