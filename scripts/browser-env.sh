#!/usr/bin/env bash
# Makes sure the portal's browser tests can run: Debian's Chromium at
# /usr/bin/chromium (installed with apt-get when missing; needs root or
# sudo), driven by Playwright from the end-to-end venv
# (tests/python/requirements.txt) with `executable_path`, so no browser is
# downloaded. Prints the Chromium path as the last line.
#   CHROMIUM="$(scripts/browser-env.sh | tail -n1)"
set -euo pipefail
chromium="${CHROMIUM:-/usr/bin/chromium}"

# Debian's chromium brings no CJK font; Japanese pages need one.
packages=()
[ -x "$chromium" ] || packages+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" || packages+=(fonts-noto-cjk)
"$(dirname "$0")/apt-install.sh" "${packages[@]}"
"$chromium" --version >&2
echo "$chromium"
