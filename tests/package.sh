#!/usr/bin/env bash
# The packages: builds the .deb and the .rpm, asserts what each holds, installs the .deb on this
# machine, runs the installed `mde-watch check` against the packaged config, and purges it again
# (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

./packaging/build.sh
deb=$(ls target/packages/mde-watch_*.deb)
rpm=$(ls target/packages/mde-watch-*.rpm)

fail() { echo "package test FAILED: $*" >&2; exit 1; }

same_list() { # name, expected (newline-separated), actual
    if [ "$2" != "$3" ]; then
        diff <(echo "$2") <(echo "$3") >&2 || true
        fail "$1 holds other files than expected"
    fi
}

common="/etc/mde-watch/mde-watch.toml
/usr/bin/mde-watch
/usr/lib/systemd/system/mde-watch.service
/usr/lib/sysusers.d/mde-watch.conf
/usr/share/bash-completion/completions/mde-watch
/usr/share/doc/mde-watch/README.md
/usr/share/doc/mde-watch/splunk/eventtypes.conf
/usr/share/doc/mde-watch/splunk/props.conf
/usr/share/doc/mde-watch/splunk/tags.conf
/usr/share/fish/vendor_completions.d/mde-watch.fish
/usr/share/man/man1/mde-watch.1.gz"
deb_expected=$(printf '%s\n%s\n%s' "$common" "/usr/share/doc/mde-watch/copyright" "/usr/share/zsh/vendor-completions/_mde-watch" | sort)
rpm_expected=$(printf '%s\n%s' "$common" "/usr/share/zsh/site-functions/_mde-watch" | sort)

deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's#^\./#/#' | sort)
same_list "$deb" "$deb_expected" "$deb_files"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/mde-watch/mde-watch.toml || fail "the config is not a conffile"
rpm_files=$(rpm -qlp "$rpm" 2>/dev/null | sort)
same_list "$rpm" "$rpm_expected" "$rpm_files"
rpm -qp --configfiles "$rpm" 2>/dev/null | grep -qx /etc/mde-watch/mde-watch.toml || fail "the rpm config is not %config"

credentials=$(mktemp -d)
purge() { $sudo dpkg --purge mde-watch >/dev/null 2>&1 || true; }
trap 'purge; rm -rf "$credentials"' EXIT
purge
$sudo dpkg -i "$deb"

getent passwd mde-watch >/dev/null || fail "postinst did not create the mde-watch user"
[ "$(stat -c '%U:%G %a' /var/lib/mde-watch)" = "mde-watch:mde-watch 750" ] || fail "state directory: $(stat -c '%U:%G %a' /var/lib/mde-watch)"
[ "$(stat -c '%U:%G %a' /etc/mde-watch/mde-watch.toml)" = "root:mde-watch 640" ] || fail "config: $(stat -c '%U:%G %a' /etc/mde-watch/mde-watch.toml)"
[ ! -e /etc/systemd/system/multi-user.target.wants/mde-watch.service ] || fail "the service was enabled before it was configured"

# The unit hands the secret over as a credential; so does this check.
echo "example-secret" > "$credentials/mde-watch-secret"
output=$(CREDENTIALS_DIRECTORY="$credentials" /usr/bin/mde-watch check --config /etc/mde-watch/mde-watch.toml)
echo "$output" | grep -q "each sweep polls" || fail "installed check printed: $output"
man -l /usr/share/man/man1/mde-watch.1.gz >/dev/null 2>&1 || zcat /usr/share/man/man1/mde-watch.1.gz | grep -q '^.TH mde-watch' || fail "man page"

echo "package test passed: $(basename "$deb") and $(basename "$rpm") hold the expected files; the installed check passes"
