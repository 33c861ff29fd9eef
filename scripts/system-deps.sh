#!/usr/bin/env bash
# Install the Debian packages countylab needs, only those missing. Usage: system-deps.sh [runtime|test]
#   runtime: bubblewrap (job sandbox), libseccomp2, Chinese fonts, Tesseract OCR with Chinese (airlock
#            checks images for text), python3-venv
#   test:    runtime + chromium (UI tests) + postgresql (metadata tests against a real server)
set -euo pipefail
mode="${1:-runtime}"
pkgs=(bubblewrap libseccomp2 fonts-noto-cjk ca-certificates tesseract-ocr tesseract-ocr-chi-sim)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then pkgs+=(python3-venv); fi
if [ "$mode" = "test" ]; then pkgs+=(chromium postgresql); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "countylab: please install these packages with your system's package manager: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "countylab: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
