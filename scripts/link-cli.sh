#!/usr/bin/env bash
# Put `countylab` on PATH: link .venv/bin/countylab into $COUNTYLAB_PREFIX/bin (default /usr/local,
# used when writable, i.e. as root) or else ~/.local/bin.  Idempotent; never replaces a file that
# is not this kind of link (another install stays as it is, with a one-line note); prints one line
# when the folder is not on PATH.  Called by scripts/venv.sh; tests run it with a temp HOME/prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$(pwd)/.venv/bin/countylab"
if [ ! -x "$src" ]; then
  echo "countylab: $src is missing; run scripts/venv.sh first" >&2
  exit 1
fi
system_bin="${COUNTYLAB_PREFIX:-/usr/local}/bin"
if [ -d "$system_bin" ] && [ -w "$system_bin" ]; then
  bin="$system_bin"
else
  bin="${HOME:?HOME is not set}/.local/bin"
  mkdir -p "$bin"
fi
dest="$bin/countylab"
if [ -L "$dest" ] && [ "$(readlink "$dest")" = "$src" ]; then
  echo "• countylab command: $dest (already linked)"
elif [ -L "$dest" ] && [ ! -e "$dest" ] && [[ "$(readlink "$dest")" == */.venv/bin/countylab ]]; then
  ln -sfn "$src" "$dest"  # a dangling link left by a removed checkout: ours to replace
  echo "• countylab command: $dest → $src"
elif [ -e "$dest" ] || [ -L "$dest" ]; then
  echo "• countylab command: $dest already exists and is not this checkout's; left as it is (this one: $src)"
else
  ln -s "$src" "$dest"
  echo "• countylab command: $dest → $src"
fi
case ":${PATH:-}:" in
  *":$bin:"*) ;;
  *) echo "  $bin is not on your PATH: run  export PATH=\"$bin:\$PATH\"  (add it to ~/.bashrc to keep it)" ;;
esac
