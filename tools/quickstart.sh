#!/usr/bin/env bash
# `make quickstart`: put `spillover` on PATH, wire it in (`spillover install all`), run the first
# tick, show the status.
#
# On PATH means an isolated install that does not depend on this checkout: `pipx install` when
# pipx is there, else `uv tool install`; both put the command in their bin dir (~/.local/bin by
# default) and survive `make clean`, moving the checkout and PEP 668 (no pip into the system
# Python). Without either, ~/.local/bin/spillover becomes a link to this checkout's .venv (then
# keep the checkout and its .venv). The scheduler entries, the hook and the statusLine all use that
# stable path.
#
# SPILLOVER_SPEC: what to install (default: this checkout). VENV: the checkout's venv (fallback).
set -euo pipefail

spec=${SPILLOVER_SPEC:-.}
venv=${VENV:-.venv}

if command -v pipx >/dev/null 2>&1; then
  echo "quickstart: pipx install --force $spec"
  pipx install --force "$spec"
  bin=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null || true)
elif command -v uv >/dev/null 2>&1; then
  echo "quickstart: uv tool install --force $spec"
  uv tool install --force "$spec"
  bin=$(uv tool dir --bin 2>/dev/null || true)
else
  "${MAKE:-make}" install VENV="$venv"
  bin=$HOME/.local/bin
  mkdir -p "$bin"
  ln -sfn "$(cd "$venv/bin" && pwd)/spillover" "$bin/spillover"
  echo "quickstart: no pipx or uv: linked $bin/spillover to $venv/bin/spillover (keep this checkout and its .venv)"
fi
bin=${bin:-$HOME/.local/bin}
exe=$bin/spillover
if [ ! -x "$exe" ]; then
  echo "quickstart: $exe was not created; see the install output above" >&2
  exit 1
fi

case ":$PATH:" in
  *":$bin:"*) echo "quickstart: spillover is on your PATH: $exe" ;;
  *)
    shown=$bin
    case $bin in "$HOME"/*) shown="\$HOME${bin#"$HOME"}" ;; esac
    echo "quickstart: $bin is not on your PATH, so \`spillover\` is not a command yet. Add it:"
    echo "  bash: echo 'export PATH=\"$shown:\$PATH\"' >> ~/.bashrc"
    echo "  zsh:  echo 'export PATH=\"$shown:\$PATH\"' >> ~/.zshrc"
    echo "  fish: fish_add_path $bin"
    echo "  (then open a new shell)"
    ;;
esac

status=0
"$exe" install all || status=1
"$exe" tick || status=1
"$exe" status || true  # informational: its exit status is the route's
exit "$status"
