#!/bin/sh
# Installs an OpenAPI 3.1 validator (@seriousme/openapi-schema-validator, from
# npm) into DIR (default: ./tools), project-local, so test_http can check the
# live /_/openapi.json with a standard tool. Debian 12 packages none.
#
#   tests/tools/install-openapi-validator.sh [DIR]
#
# Prints the validator's path on success. Exits 0 without installing (and
# says why on stderr) when npm or the registry is unavailable: the caller then
# skips the validation with a note. Idempotent: an existing install is reused.
set -u
dir=${1:-tools}
pkg='@seriousme/openapi-schema-validator@^2'
bin="$dir/node_modules/.bin/validate-api"

if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install-openapi-validator: npm/node not installed (apt-get install npm); not installing" >&2
    exit 0
fi
mkdir -p "$dir" || exit 0
# bounded: a registry that does not answer must not hang the build or the test
if ! timeout 180 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
        "$pkg" >"$dir/npm-install.log" 2>&1; then
    echo "install-openapi-validator: npm install $pkg failed or timed out (see $dir/npm-install.log)" >&2
    exit 0
fi
if [ -x "$bin" ]; then
    echo "$bin"
fi
exit 0
