#!/usr/bin/env bash
# Builds berth-test/testbin:latest, a tiny local image for trying Berth on a
# machine without registry access: a static Rust program (tests/testbin) as
# the only file of a FROM scratch image. The test suite builds the same image.
#
#   ./deploy/test-image.sh
#   # commands: sleep SECS | sleep-ignore SECS | exit CODE | exit-after SECS CODE
#   #           echo-server PORT [TEXT] | alloc MIB | env
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release -p berth-testbin \
    --target "$target" --target-dir target/testbin
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "target/testbin/$target/release/berth-testbin" "$context/berth-testbin"
printf 'FROM scratch\nCOPY berth-testbin /testbin\nENTRYPOINT ["/testbin"]\n' >"$context/Dockerfile"
if ! DOCKER_BUILDKIT=0 docker build --quiet --tag berth-test/testbin:latest "$context" >"$context/build.log" 2>&1; then
    cat "$context/build.log" >&2
    exit 1
fi
echo "built berth-test/testbin:latest"
