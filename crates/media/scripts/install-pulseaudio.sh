#!/usr/bin/env bash
# Installs what the PulseAudio device test of pipecat-media needs (Debian/Ubuntu, as root).
#
#   pulseaudio        the daemon; the test starts its own instance with a null sink
#   pulseaudio-utils  pactl (optional: the test only uses it to set the default source)
#
# The test itself (crates/media/tests/pulseaudio_device.rs) starts and stops the daemon, with
# its own XDG_RUNTIME_DIR in a temporary directory; nothing needs to run beforehand. Without
# the `pulseaudio` binary the test prints why and skips.
#
# Build-time packages for the crate itself (always needed): libasound2-dev cmake pkg-config.
set -euo pipefail

packages=(pulseaudio pulseaudio-utils)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "pulseaudio packages already installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]}; run as root:" >&2
    echo "    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
