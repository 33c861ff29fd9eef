#!/usr/bin/env bash
# Build dist/countylab-offline-<version>-py<XY>-<platform>.tar.gz: a wheelhouse that installs the
# lab on a county server with no network (see docs/how-to/county-server.md, "Install offline").
#
# It holds our two wheels, a wheel of every runtime dependency at the version constraints.txt
# pins, constraints.txt itself and install.sh (pip --no-index from the bundle only). Building it
# needs a package index once (pip download); installing it needs none. Wheels are for this
# machine's Python version and platform: build with the same Python (PYTHON=python3.11) on the
# same OS and architecture as the server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "countylab needs Python 3.11 or newer (found $("$PY" --version 2>&1))" >&2; exit 1; }

version="$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
platform="$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_"))')"
name="countylab-offline-${version}-py${pyver/./}-${platform}"

work="$(mktemp -d /tmp/countylab-bundle.XXXXXX)"
trap 'rm -rf "$work"' EXIT
bundle="$work/$name"
mkdir -p "$bundle/wheels" "$work/src" dist

# Our wheels, built from the committed tree (HEAD, which BUILD-INFO names; uncommitted edits are
# not shipped) in a copy, so that the checkout gets no build/ or *.egg-info. Outside a git
# checkout (an unpacked source archive) the files as they are.
if commit="$(git rev-parse --short HEAD 2>/dev/null)"; then
  git archive HEAD pyproject.toml README.md src client | tar -x -C "$work/src"
  git diff --quiet HEAD -- pyproject.toml README.md src client \
    || echo "note: uncommitted changes in src/ or client/ are not in the bundle (built from $commit)" >&2
else
  commit="unknown (not a git checkout)"
  cp -r pyproject.toml README.md src client "$work/src/"
  find "$work/src" \( -name __pycache__ -o -name '*.egg-info' -o -name build \) -prune -exec rm -rf {} +
fi
# The browser libraries (ECharts) are built here, where the npm registry is reachable, from the
# committed package-lock.json, and ship inside the lab's wheel (static/vendor/): the county server
# has no registry.  A bundle without them would silently lose every chart, so that is an error.
cp package.json package-lock.json "$work/src/" && mkdir -p "$work/src/scripts" && cp scripts/assets.sh "$work/src/scripts/"
(cd "$work/src" && bash scripts/assets.sh && rm -rf node_modules)
[ -f "$work/src/src/countylab/web/static/vendor/echarts.min.js" ] \
  || { echo "offline bundle: ECharts could not be installed with npm (is the npm registry reachable?)" >&2; exit 1; }
"$PY" -m pip wheel -q --no-deps -w "$bundle/wheels" "$work/src/client" "$work/src"
lab_whl="$(ls "$bundle/wheels"/countylab-"$version"-*.whl)"
client_whl="$(ls "$bundle/wheels"/countylab_client-*.whl)"

# Pure-Python dependencies published only as an sdist (jieba) become py3-none-any wheels here.
"$PY" -m pip wheel -q --no-deps -c constraints.txt -w "$bundle/wheels" jieba
# Every runtime dependency as a wheel (no sdists: the server may have no compiler), pinned.
# The two local wheels are named by file, so no index can substitute a package of that name.
"$PY" -m pip download -q --only-binary=:all: -c constraints.txt -d "$bundle/wheels" \
  --find-links "$bundle/wheels" "$lab_whl" "$client_whl"

cp constraints.txt "$bundle/"
cat > "$bundle/BUILD-INFO" <<EOF
countylab ${version}
python ${pyver}
platform ${platform}
built $(date -u +%Y-%m-%dT%H:%M:%SZ) from ${commit}
EOF
cat > "$bundle/install.sh" <<EOF
#!/usr/bin/env bash
# Install countylab ${version} from this folder, with no network: bash install.sh [VENV]
# (default /opt/countylab/.venv). Then: VENV/bin/countylab doctor --config <your settings file>.
set -euo pipefail
here="\$(cd "\$(dirname "\$0")" && pwd)"
venv="\${1:-/opt/countylab/.venv}"
PY="\${PYTHON:-python3}"
have="\$("\$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if [ "\$have" != "${pyver}" ]; then
  echo "this bundle holds wheels for Python ${pyver}; \$PY is \$have (set PYTHON=python${pyver})" >&2
  echo "本安装包的 wheel 适用于 Python ${pyver}，而 \$PY 为 \$have（请设置 PYTHON=python${pyver}）" >&2
  exit 1
fi
[ -x "\$venv/bin/python" ] || "\$PY" -m venv "\$venv"
# --isolated: no pip config or PIP_* variables may add an index or other wheels
"\$venv/bin/python" -m pip install --isolated --no-index --find-links "\$here/wheels" \\
  -c "\$here/constraints.txt" "countylab==${version}"
"\$venv/bin/countylab" version
echo "installed in \$venv; next: \$venv/bin/countylab doctor --config /etc/countylab/countylab.toml"
EOF
chmod +x "$bundle/install.sh"

tar -C "$work" -czf "dist/$name.tar.gz" "$name"
echo "dist/$name.tar.gz: $(du -h "dist/$name.tar.gz" | cut -f1), $(ls "$bundle/wheels" | wc -l) wheels"
