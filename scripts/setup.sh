#!/usr/bin/env bash
# Install everything ko-hypervl needs, idempotently: a second run with nothing changed takes seconds.
#   bash scripts/setup.sh [EXTRAS]     e.g. `bash scripts/setup.sh dev` for the test tools
# Where it installs: the active virtual environment if there is one, else ./.venv (created here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- Python environment -------------------------------------------------------------------------
if [ -n "${VIRTUAL_ENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
else
    VENV="$ROOT/.venv"
    if [ ! -x "$VENV/bin/python" ]; then
        BASE_PY="$(command -v python3 || true)"
        [ -n "$BASE_PY" ] || { say "python3 not found: install Python >= 3.10 first"; exit 1; }
        "$BASE_PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || { say "Python >= 3.10 needed, found $("$BASE_PY" --version)"; exit 1; }
        say "creating virtual environment $VENV"
        "$BASE_PY" -m venv "$VENV" || { say "python3 -m venv failed: on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 1; }
    fi
    PY="$VENV/bin/python"
fi

# --- system packages (apt): one per line in scripts/apt-packages.txt, plus apt-packages-EXTRA.txt ----------
# for each extra asked for (e.g. the headless Chromium the browser tests drive, with `dev`)
APT_LISTS=("$ROOT/scripts/apt-packages.txt")
for extra in ${EXTRAS//,/ }; do
    if [ -f "$ROOT/scripts/apt-packages-$extra.txt" ]; then APT_LISTS+=("$ROOT/scripts/apt-packages-$extra.txt"); fi
done
mapfile -t APT_PACKAGES < <(cat "${APT_LISTS[@]}" | grep -v '^\s*\(#\|$\)' || true)
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing system packages: ${missing[*]}"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            say "missing system packages: ${missing[*]}"
            say "install them with: sudo apt-get install -y ${missing[*]}   (features that need them are skipped until then)"
        fi
    fi
fi

# --- Python packages --------------------------------------------------------------------------------
STAMP="$("$PY" -c 'import sys; print(sys.prefix)')/.ko-hypervl-setup"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)"
# the stamp holds the hash of what was installed and every extra installed with it
HAVE=""; HAVE_EXTRAS=""
[ -f "$STAMP" ] && read -r HAVE HAVE_EXTRAS < "$STAMP" || true
covered=1
for extra in ${EXTRAS//,/ }; do
    case ",$HAVE_EXTRAS," in *",$extra,"*) ;; *) covered=0 ;; esac
done
if [ "$HAVE" = "$WANT" ] && [ "$covered" = 1 ] && "$PY" -c 'import ko_hypervl' 2>/dev/null; then
    say "Python packages up to date ($("$PY" --version))"
else
    # torch first, pinned: 2.13.0 is the CPU wheel these machines install in seconds; any unpinned torch
    # spec makes pip fetch the newest CUDA build (several GB). An already-installed torch (e.g. a CUDA
    # build on a GPU machine) is kept.
    if ! "$PY" -c 'import torch' 2>/dev/null; then
        say "installing torch==2.13.0 (CPU)"
        "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
    fi
    SPEC="$ROOT"; [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
    say "installing ko-hypervl${EXTRAS:+ [$EXTRAS]} (editable) and its dependencies"
    "$PY" -m pip install -q --disable-pip-version-check -e "$SPEC"
    [ "$HAVE" = "$WANT" ] || HAVE_EXTRAS=""
    ALL_EXTRAS="$(echo "$HAVE_EXTRAS,$EXTRAS" | tr ',' '\n' | { grep -v '^$' || true; } | sort -u | paste -sd, -)"
    echo "$WANT $ALL_EXTRAS" > "$STAMP"
fi
echo "$PY"
