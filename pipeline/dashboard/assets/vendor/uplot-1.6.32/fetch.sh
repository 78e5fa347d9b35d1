#!/usr/bin/env bash
# Re-fetches the vendored uPlot from the npm registry and checks the tarball's integrity.
set -euo pipefail
version=1.6.32
integrity='sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=='
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
curl -fsS -o "$tmp/u.tgz" "https://registry.npmjs.org/uplot/-/uplot-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tmp/u.tgz" | base64 -w0)"
[ "$got" = "$integrity" ] || { echo "integrity mismatch: $got" >&2; exit 1; }
tar -xzf "$tmp/u.tgz" -C "$tmp"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$here/"
echo "uPlot $version: ok"
