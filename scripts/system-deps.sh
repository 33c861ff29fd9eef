#!/usr/bin/env bash
# Install the Debian packages countylab needs, only those missing. Usage: system-deps.sh [runtime|test]
#   runtime: bubblewrap (job sandbox), libseccomp2, uidmap (newuidmap: a service-user lab maps jobs
#            to a subordinate uid), Chinese fonts, Tesseract OCR with Chinese (airlock
#            checks images for text), python3-venv
#   test:    runtime + chromium (UI tests) + postgresql (metadata tests against a real server)
# Both create the sandbox system user (countylab-sandbox: no home, no shell, owns nothing) that
# jobs run as when the lab runs as root; see docs/explanation/sandbox.md.
set -euo pipefail
mode="${1:-runtime}"
pkgs=(bubblewrap libseccomp2 uidmap fonts-noto-cjk ca-certificates tesseract-ocr tesseract-ocr-chi-sim)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then pkgs+=(python3-venv); fi
if [ "$mode" = "test" ]; then pkgs+=(chromium postgresql); fi
if ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi  # scripts/assets.sh: ECharts (charts)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# The sandbox identity: a system group and user with no home and no login shell.  Jobs (and
# model workers) switch to it inside bubblewrap; it must own no file on the host.
sandbox_user() {
  local name="${COUNTYLAB_SANDBOX_USER:-countylab-sandbox}"
  getent group "$name" >/dev/null || $SUDO groupadd --system "$name"
  if ! getent passwd "$name" >/dev/null; then
    $SUDO useradd --system --gid "$name" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "countylab job sandbox" "$name"
  fi
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then sandbox_user; exit 0; fi

if ! command -v apt-get >/dev/null; then
  echo "countylab: please install these packages with your system's package manager: ${missing[*]}" >&2
  exit 1
fi
echo "countylab: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
sandbox_user
