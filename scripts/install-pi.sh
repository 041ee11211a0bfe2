#!/usr/bin/env bash
# Install the SignalCraft edge agent on a Raspberry Pi (Raspberry Pi OS 64-bit, bookworm) from a checkout:
#
#   sudo ./scripts/install-pi.sh --site shop-12 --device freezer-1 [--broker mqtts://broker.example:8883]
#
# Creates the signalcraft user (in dialout), the venv in /opt/signalcraft/venv (binary wheels only: nothing
# is compiled on the Pi), /etc/signalcraft/agent.toml and the credential for the broker password (only when
# they do not exist yet), installs and enables systemd/signalcraft-agent.service. Safe to run again to
# upgrade: existing config and credentials are kept. See docs/INSTALL-PI.md.
set -euo pipefail

SITE="" DEVICE="" BROKER="" START=0 DRY=0
PREFIX=/opt/signalcraft ETC=/etc/signalcraft STATE=/var/lib/signalcraft
UNIT=/etc/systemd/system/signalcraft-agent.service
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --site) SITE="$2"; shift 2 ;;
        --device) DEVICE="$2"; shift 2 ;;
        --broker) BROKER="$2"; shift 2 ;;
        --start) START=1; shift ;;
        --dry-run) DRY=1; shift ;;  # print what would be done
        -h|--help) usage 0 ;;
        *) echo "unknown option $1" >&2; usage 2 ;;
    esac
done

run() { if [ "$DRY" = 1 ]; then echo "+ $*"; else "$@"; fi; }
die() { echo "error: $*" >&2; exit 1; }

[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root: sudo $0 $*"
[ -f "$SRC/pyproject.toml" ] && [ -f "$SRC/systemd/signalcraft-agent.service" ] || die "run from a SignalCraft checkout"
case "$(uname -m)" in
    aarch64|x86_64) ;;
    armv7l|armv6l) die "32-bit OS: onnxruntime has no 32-bit ARM wheels; install Raspberry Pi OS 64-bit" ;;
    *) echo "warning: untested architecture $(uname -m)" >&2 ;;
esac
PY=$(command -v python3) || die "python3 missing: apt-get install python3 python3-venv"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 needed (bookworm has 3.11)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null || run apt-get install -y python3-venv

# 1. The service user: no shell, no home of its own beyond the state directory; serial ports via dialout.
if ! id signalcraft >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin signalcraft
fi
run usermod -aG dialout signalcraft
# The technician who ran sudo may talk to the agent's control socket (group signalcraft) and the ports.
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    run usermod -aG signalcraft,dialout "$SUDO_USER"
fi

# 2. The venv, from binary wheels only (aarch64 wheels exist for every [edge] dependency).
run install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || run "$PY" -m venv "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --quiet --upgrade pip
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
run "$PREFIX/venv/bin/pip" wheel --quiet --no-deps --wheel-dir "$WHEELS" "$SRC"
if [ "$DRY" = 1 ]; then
    echo "+ $PREFIX/venv/bin/pip install --only-binary=:all: $WHEELS/signalcraft-*.whl[edge]"
else
    WHEEL=$(ls "$WHEELS"/signalcraft-*.whl)
    "$PREFIX/venv/bin/pip" install --quiet --upgrade --only-binary=:all: "${WHEEL}[edge]"
fi
run ln -sf "$PREFIX/venv/bin/signalcraft-agent" /usr/local/bin/signalcraft-agent

# 3. Config skeleton and the broker credential (kept when present: an upgrade never overwrites them).
run install -d -m 0750 -o root -g signalcraft "$ETC"
run install -d -m 0700 -o root -g root "$ETC/credentials"
if [ ! -e "$ETC/agent.toml" ]; then
    [ -n "$SITE" ] && [ -n "$DEVICE" ] || die "first install: give --site and --device"
    HOSTPORT=${BROKER#*://}
    SCHEME=${BROKER%%://*}
    [ -n "$BROKER" ] || { SCHEME=mqtts; HOSTPORT="broker.invalid:8883"; }
    CONFIG=$(cat <<EOF
# SignalCraft agent. Check with: sudo signalcraft-agent config check && sudo signalcraft-agent doctor
[agent]
site = "$SITE"
device = "$DEVICE"
state_dir = "$STATE"
poll_interval = "1s"

[mqtt]
# The password is not here: the service reads the full URL from $ETC/credentials/mqtt.url.
url = "$SCHEME://$DEVICE@$HOSTPORT"
ca_file = "$ETC/ca.crt"

# One entry per slave; \`signalcraft-agent diag ports\` and \`diag scan --port …\` find them.
# [[modbus]]
# name = "controller"
# port = "/dev/serial/by-id/usb-FTDI_…-if00-port0"
# baud = 19200
# slave = 1
# profile = "signalcraft-sim-compressor"
EOF
)
    if [ "$DRY" = 1 ]; then echo "+ write $ETC/agent.toml"; else
        printf '%s\n' "$CONFIG" > "$ETC/agent.toml"
        chown root:signalcraft "$ETC/agent.toml"; chmod 0640 "$ETC/agent.toml"
    fi
fi
if [ ! -e "$ETC/credentials/mqtt.url" ]; then
    if [ "$DRY" = 1 ]; then echo "+ write $ETC/credentials/mqtt.url (0600 root)"; else
        # A placeholder the agent refuses with a message naming mqtt.url, until the real one is put there.
        umask 077
        echo "replace-me://set the broker URL with the device password here" > "$ETC/credentials/mqtt.url"
    fi
fi

# 4. The unit.
run install -m 0644 "$SRC/systemd/signalcraft-agent.service" "$UNIT"
if [ "$DRY" = 0 ] && command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT"
fi
run systemctl daemon-reload
run systemctl enable signalcraft-agent.service
if [ "$START" = 1 ]; then run systemctl restart signalcraft-agent.service; fi

cat <<EOF
Installed. Next:
  1. put the broker's CA at $ETC/ca.crt and the URL with the password in $ETC/credentials/mqtt.url
     (mqtts://$DEVICE:PASSWORD@broker:8883), then add the [[modbus]] slaves to $ETC/agent.toml
  2. sudo signalcraft-agent doctor          (every check, with the fix for each failure)
  3. sudo systemctl start signalcraft-agent && signalcraft-agent status
EOF
