#!/usr/bin/env bash
# Installs Debian packages with apt-get, through sudo unless run as root. The
# test scripts call it for what they find missing (chromium, fonts,
# postgresql); its output goes to standard error.
#   scripts/apt-install.sh postgresql
set -euo pipefail
[ "$#" -gt 0 ] || exit 0
echo "installing $* (Debian)" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2
"${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >&2
