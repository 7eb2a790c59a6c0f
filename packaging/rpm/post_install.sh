# Creates the service account and the directories it owns; the service is not enabled or started.
if ! getent passwd mde-watch >/dev/null; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers /usr/lib/sysusers.d/mde-watch.conf
    else
        useradd --system --user-group --home-dir /var/lib/mde-watch \
            --shell /sbin/nologin --comment "mde-watch collector" mde-watch
    fi
fi
install -d -o mde-watch -g mde-watch -m 0750 /var/lib/mde-watch /var/log/mde-watch
chgrp mde-watch /etc/mde-watch /etc/mde-watch/mde-watch.toml
chmod 0750 /etc/mde-watch
chmod 0640 /etc/mde-watch/mde-watch.toml
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
