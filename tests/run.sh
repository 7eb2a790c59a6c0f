#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs every test.
# Safe to run again and again, on a fresh machine or a used one.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need beyond the Rust toolchain. apt-get install only works after
# apt-get update on a fresh machine, so update first, and only when something is missing.
debian_packages=()
missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Every test, unit and integration, against real files, a real sled store and the emulator.
cargo test --locked --lib --bins --tests "$@"
