#!/bin/sh
# Fetches Redoc's standalone bundle at the version given (default: the one
# embedded now) with npm, into static/, and rewrites static/SHA256SUMS.
# Run from this folder; commit the result. npm is needed only here.
set -eu
version=${1:-$(sed -n 's/^const RedocVersion = "\(.*\)"$/\1/p' apiref.go)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "redoc@$version" >/dev/null && tar xzf redoc-"$version".tgz)
upstream=$(sha256sum "$work/package/bundles/redoc.standalone.js" | cut -d' ' -f1)
# The one change: the Redocly logo in the side menu is fetched from the
# vendor's CDN; it becomes an empty inline image, so no request leaves the
# hub (the menu still says "API docs by Redocly").
grep -q 'https://cdn.redoc.ly/redoc/logo-mini.svg' "$work/package/bundles/redoc.standalone.js"
sed -i 's|https://cdn.redoc.ly/redoc/logo-mini.svg|data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E|' "$work/package/bundles/redoc.standalone.js"
if grep -o 'https://cdn[.a-z]*/[^"]*' "$work/package/bundles/redoc.standalone.js"; then
  echo "the bundle names another CDN address: look before embedding it" >&2
  exit 1
fi
cp "$work/package/bundles/redoc.standalone.js" static/
cp "$work/package/bundles/redoc.standalone.js.LICENSE.txt" static/
cp "$work/package/LICENSE" static/REDOC-LICENSE
sed -i "s/^const RedocVersion = \".*\"$/const RedocVersion = \"$version\"/" apiref.go
(cd static && { echo "# redoc $version"; echo "# upstream redoc.standalone.js $upstream, logo address replaced (update.sh)"; sha256sum redoc.standalone.js redoc.standalone.js.LICENSE.txt REDOC-LICENSE; } > SHA256SUMS)
echo "redoc $version in static/; review and commit"
