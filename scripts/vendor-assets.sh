#!/usr/bin/env bash
# Re-fetches the web UI's third-party front-end files from the npm registry into
# crates/server/assets/vendor/ and rewrites its VERSIONS file.
#
# Why vendored: the UI is embedded in the `toll` binary and must work on an operator's network
# with no internet, and CI has no CDN. Why pinned by integrity: a re-run must give the same
# bytes that were reviewed; npm reports each tarball's sha512 and this script refuses a tarball
# whose integrity is not the one written below. To upgrade, change a version, run the script
# with UPDATE=1 (it prints the new integrity instead of failing), review the diff, then pin it.
set -euo pipefail
cd "$(dirname "$0")/.."

out=crates/server/assets/vendor
# package version integrity(sha512, as npm prints it)
pins=(
  "bootstrap 5.3.9 sha512-20cU0rcfw8WdxtVbmfU+xT2EjvVTw9Ror/h1Qvd7DXCujRg8OO9mdBCsmTHdJFf3BuadmBNJtgIuUXsBqSkk/w=="
  "htmx.org 4.0.1 sha512-oF7JgXhDW9UXCy/k1ZYFUQgzu/rm19ORWPSPNL91vPluB2PB9+MV55tyQdH/w7o2EAbTYUG5SDW1R60mdkdqGg=="
  "echarts 6.1.0 sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="
  "swagger-ui-dist 5.35.0 sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
)
# package: tarball path -> vendored name (the tarballs unpack under package/)
files_bootstrap=("dist/css/bootstrap.min.css bootstrap.min.css" "dist/js/bootstrap.bundle.min.js bootstrap.bundle.min.js" "LICENSE LICENSE-bootstrap")
files_htmx_org=("dist/htmx.min.js htmx.min.js" "LICENSE LICENSE-htmx")
# echarts.min.js already registers the ZH and EN locales: no separate i18n file is needed.
files_echarts=("dist/echarts.min.js echarts.min.js" "LICENSE LICENSE-echarts" "NOTICE NOTICE-echarts")
# The API reference page (/api/docs) renders /api/openapi.json with Swagger UI.
files_swagger_ui_dist=("swagger-ui-bundle.js swagger-ui-bundle.js" "swagger-ui.css swagger-ui.css" "LICENSE LICENSE-swagger-ui" "NOTICE NOTICE-swagger-ui")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

{
  echo "# Third-party front-end files in this folder, fetched from the npm registry by"
  echo "# scripts/vendor-assets.sh (do not edit by hand; re-run the script)."
  echo "# package  version  license  npm-integrity  npm-shasum(sha1)  files"
} > "$tmp/VERSIONS"

for pin in "${pins[@]}"; do
  read -r pkg ver want <<<"$pin"
  tgz=$(cd "$tmp" && npm pack --silent "$pkg@$ver" | tail -n 1)
  # The integrity of the bytes we got, computed here rather than taken from npm's word.
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
  sha1=$(sha1sum "$tmp/$tgz" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    if [[ "${UPDATE:-0}" == 1 ]]; then
      echo "$pkg@$ver integrity is now $got: pin it in $0" >&2
    else
      echo "$pkg@$ver: integrity $got, expected $want" >&2
      exit 1
    fi
  fi
  dir="$tmp/$pkg"
  mkdir -p "$dir"
  tar xzf "$tmp/$tgz" -C "$dir"
  license=$(node -e 'console.log(require(process.argv[1]).license)' "$dir/package/package.json")
  var="files_${pkg//[.-]/_}[@]"
  names=()
  for pair in "${!var}"; do
    read -r src dst <<<"$pair"
    cp "$dir/package/$src" "$out/$dst"
    names+=("$dst")
  done
  echo "$pkg $ver $license $got $sha1 ${names[*]}" >> "$tmp/VERSIONS"
done
cp "$tmp/VERSIONS" "$out/VERSIONS"
echo "vendored into $out:"
cat "$out/VERSIONS"
