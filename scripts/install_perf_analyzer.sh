#!/usr/bin/env bash
# Install Triton's load tool perf_analyzer into a private folder (default .venv/perf_analyzer).
#
#   scripts/install_perf_analyzer.sh [DEST] [PYTHON]
#
# Result: DEST/bin/perf_analyzer, a wrapper that sets LD_LIBRARY_PATH and runs the real binary.
# Nothing outside DEST changes, unless the last resort (apt-get install libb64-0d) is needed.
#
# Two ways, tried in order, each kept only when `perf_analyzer --version` then runs:
#   1. the binary inside the tritonclient 2.40.0 wheel (runs on glibc 2.36, Debian 12, and
#      newer): needs libb64.so.0d (Debian's libb64-0d, unpacked from its .deb into DEST) and
#      libcudart.so.12 (PyPI nvidia-cuda-runtime-cu12), both put on LD_LIBRARY_PATH;
#   2. PyPI's perf-analyzer wheel (needs glibc >= 2.38: Debian 13), same libraries beside it.
# Both wheels go in with `pip --no-deps --target`, so the project's own tritonclient stays.
#
# Idempotent: returns at once when the wrapper already runs. Never fails the caller: when no
# way works it writes DEST/UNAVAILABLE (the reason, read by exatrkx.perf) and exits 0.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-$ROOT/.venv/perf_analyzer}"
PYTHON="${2:-$ROOT/.venv/bin/python}"
TRITONCLIENT_VERSION="2.40.0"
PERF_ANALYZER_VERSION="2.60.0"
CUDART_VERSION="12.9.79"

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
WRAPPER="$DEST/bin/perf_analyzer"
LOG="$DEST/install.log"

log() { echo "install_perf_analyzer: $*" | tee -a "$LOG" >&2; }

works() {  # the version goes to stderr
  local out
  out="$("$WRAPPER" --version 2>&1)" || return 1
  case "$out" in *"Perf Analyzer Version"*) return 0 ;; *) return 1 ;; esac
}

if [ -x "$WRAPPER" ] && works; then
  rm -f "$DEST/UNAVAILABLE"
  exit 0
fi
: > "$LOG"

pip_target() {  # pip_target DIR PACKAGE...
  local dir="$1"; shift
  [ -d "$dir" ] && return 0
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps --no-compile \
      --target "$dir.tmp" "$@" >>"$LOG" 2>&1 || { rm -rf "$dir.tmp"; return 1; }
  mv "$dir.tmp" "$dir"
}

libb64_dir() {  # prints a folder holding libb64.so.0d, unpacked into DEST when needed
  local found
  found="$(find "$DEST/deb" -name 'libb64.so.0d' 2>/dev/null | head -n1)"
  if [ -z "$found" ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    local tmp
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    if ! (cd "$tmp" && apt-get download libb64-0d >>"$LOG" 2>&1); then
      apt-get update -qq >>"$LOG" 2>&1 || true
      (cd "$tmp" && apt-get download libb64-0d >>"$LOG" 2>&1) || true
    fi
    local deb
    deb="$(ls "$tmp"/libb64-0d_*.deb 2>/dev/null | head -n1)"
    if [ -n "$deb" ]; then
      mkdir -p "$DEST/deb" && dpkg-deb -x "$deb" "$DEST/deb" >>"$LOG" 2>&1
    fi
    rm -rf "$tmp"
    found="$(find "$DEST/deb" -name 'libb64.so.0d' 2>/dev/null | head -n1)"
  fi
  if [ -z "$found" ] && ! ldconfig -p 2>/dev/null | grep -q 'libb64.so.0d'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "unpacking libb64-0d failed; installing it system-wide with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libb64-0d >>"$LOG" 2>&1 || true
    fi
  fi
  [ -n "$found" ] && dirname "$found"
}

write_wrapper() {  # write_wrapper BINARY LIBDIR...
  local binary="$1"; shift
  local libs
  libs="$(IFS=:; echo "$*")"
  mkdir -p "$DEST/bin"
  cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# perf_analyzer with the libraries it needs (written by scripts/install_perf_analyzer.sh).
LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$binary" "\$@"
EOF
  chmod +x "$WRAPPER.tmp" "$binary"
  mv "$WRAPPER.tmp" "$WRAPPER"
}

log "installing perf_analyzer into $DEST"
if ! pip_target "$DEST/cudart" "nvidia-cuda-runtime-cu12==$CUDART_VERSION"; then
  log "pip could not install nvidia-cuda-runtime-cu12==$CUDART_VERSION"
fi
CUDART_LIB="$(dirname "$(find "$DEST/cudart" -name 'libcudart.so.12' 2>/dev/null | head -n1)" 2>/dev/null)"
B64_LIB="$(libb64_dir)"
LIBS=()
[ -n "$CUDART_LIB" ] && LIBS+=("$CUDART_LIB")
[ -n "$B64_LIB" ] && LIBS+=("$B64_LIB")

reason=""
# 1. tritonclient 2.40.0's binary
if pip_target "$DEST/tritonclient" "tritonclient==$TRITONCLIENT_VERSION"; then
  write_wrapper "$DEST/tritonclient/bin/perf_analyzer" "${LIBS[@]}"
  if works; then
    log "ready: tritonclient $TRITONCLIENT_VERSION perf_analyzer"
    rm -f "$DEST/UNAVAILABLE"
    exit 0
  fi
  missing="$("$WRAPPER" --version 2>&1 | head -n3 | tr '\n' ' ')"
  reason="tritonclient $TRITONCLIENT_VERSION perf_analyzer does not run: $missing"
  log "$reason"
else
  reason="pip could not install tritonclient==$TRITONCLIENT_VERSION"
  log "$reason"
fi

# 2. PyPI's perf-analyzer (glibc >= 2.38)
if pip_target "$DEST/pypi" "perf-analyzer==$PERF_ANALYZER_VERSION"; then
  binary="$DEST/pypi/perf_analyzer/bin/perf_analyzer"  # the ELF file, not the entry script
  if [ -f "$binary" ]; then
    write_wrapper "$binary" "${LIBS[@]}"
    if works; then
      log "ready: PyPI perf-analyzer $PERF_ANALYZER_VERSION"
      rm -f "$DEST/UNAVAILABLE"
      exit 0
    fi
    missing="$("$WRAPPER" --version 2>&1 | head -n3 | tr '\n' ' ')"
    reason="$reason; perf-analyzer $PERF_ANALYZER_VERSION does not run: $missing"
  else
    reason="$reason; the perf-analyzer wheel holds no perf_analyzer binary"
  fi
else
  reason="$reason; pip could not install perf-analyzer==$PERF_ANALYZER_VERSION"
fi

rm -f "$WRAPPER"
echo "$reason (see $LOG)" > "$DEST/UNAVAILABLE"
log "perf_analyzer unavailable: $reason"
exit 0
