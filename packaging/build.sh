#!/usr/bin/env bash
# Builds the .deb and the .rpm into target/packages/. Installs cargo-deb and cargo-generate-rpm
# when missing (crates.io only). The man page and completions are generated from the binary's
# clap definitions, so they always match it.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo-deb cargo-generate-rpm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "installing $tool (cargo install --locked)"
        cargo install --locked --quiet "$tool"
    fi
done

cargo build --release --locked
generated=target/packaging
rm -rf "$generated"
mkdir -p "$generated"
./target/release/mde-watch generate man | gzip -9n > "$generated/mde-watch.1.gz"
./target/release/mde-watch generate completions bash > "$generated/mde-watch.bash"
./target/release/mde-watch generate completions zsh > "$generated/_mde-watch"
./target/release/mde-watch generate completions fish > "$generated/mde-watch.fish"

mkdir -p target/packages
cargo deb --no-build --output target/packages/
cargo generate-rpm --output target/packages/
ls -l target/packages/
