#!/usr/bin/env bash
# Builds the Pulumi toolchain warren needs (the `pulumi` CLI and the
# Kubernetes resource provider plugin) from the Go module proxy and caches it
# outside the repo. Nothing prebuilt is downloaded: the machines this project
# runs on reach only the Go module proxy, so both binaries are compiled here.
#
# Usage:
#   scripts/pulumi-toolchain.sh              # ensure the toolchain is built
#   eval "$(scripts/pulumi-toolchain.sh --print-env)"
#                                            # ensure it, then export PATH etc.
#
# Cache: ${WARREN_CACHE_DIR:-$HOME/.cache/warren}
#   bin/pulumi                          the CLI (the only thing put on PATH)
#   build/pulumi-resource-kubernetes    the provider as built, off PATH
#   pulumi-home/                        PULUMI_HOME; the provider is installed
#                                       in its plugins/ dir
#   src/                                generated wrapper module and the
#                                       prepared provider source
# Every step is skipped when its output exists at the right version, so a warm
# run takes about a second. Progress goes to stderr; stdout carries only the
# --print-env export lines.
set -euo pipefail

PULUMI_VERSION=3.274.1
K8S_VERSION=4.25.0
# The proxy serves provider/v4 only as a pseudo-version; this one is the
# commit tagged v4.25.0.
K8S_PROVIDER_MODVER=v4.0.0-20260115033456-f47bc2d6f199

PULUMI_PKG=github.com/pulumi/pulumi/pkg/v3
PULUMI_SDK=github.com/pulumi/pulumi/sdk/v3
K8S_PROVIDER_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4
K8S_SDK_MOD=github.com/pulumi/pulumi-kubernetes/sdk/v4

CACHE=${WARREN_CACHE_DIR:-$HOME/.cache/warren}
BIN=$CACHE/bin
SRC=$CACHE/src
# The provider binary is kept off PATH: the CLI prefers a provider found on
# PATH (Automation API puts $CACHE/bin there) over the installed plugin.
PROVIDER_BIN=$CACHE/build/pulumi-resource-kubernetes

print_env=false
case "${1:-}" in
  --print-env) print_env=true ;;
  "") ;;
  -h|--help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0 ;;
  *) echo "pulumi-toolchain: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

export PULUMI_HOME=$CACHE/pulumi-home
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
# Build settings: no VCS stamping (the sources are not git checkouts), no
# workspace from wherever the caller stands, binaries for this host.
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0
unset GOOS GOARCH

start=$SECONDS
log() { printf 'pulumi-toolchain: [%3ds] %s\n' "$((SECONDS - start))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH"
mkdir -p "$BIN" "$SRC" "${PROVIDER_BIN%/*}" "$PULUMI_HOME"

# One run at a time per cache: a second caller waits instead of racing the
# first one's build.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another run holds $CACHE/.lock, waiting"
    flock 9
  fi
fi

tmps=()
cleanup() { local t; for t in "${tmps[@]+"${tmps[@]}"}"; do rm -rf "$t"; done; }
trap cleanup EXIT

# mod_field MODULE@VERSION FIELD -> the field of `go mod download -json`.
mod_field() {
  local json
  json=$(cd "$SRC" && go mod download -json "$1") || die "go mod download $1 failed: $json"
  printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -n1
}

# replace_of GOMOD_FILE MODULE -> "old[@v]=new[@v]" for go mod edit -replace,
# from either a one-line replace or a replace ( ... ) block.
replace_of() {
  awk -v mod="$2" '
    /^replace[[:space:]]*\($/ { inblock = 1; next }
    inblock && /^\)/          { inblock = 0; next }
    {
      line = $0
      if (inblock) line = "replace " line
      sub(/\/\/.*/, "", line)
      n = split(line, f, /[[:space:]]+/)
      if (f[1] != "replace" || f[2] != mod) next
      if (f[3] == "=>") { old = f[2]; i = 4 } else { old = f[2] "@" f[3]; i = 5 }
      new = f[i]; if (i + 1 <= n && f[i + 1] != "") new = new "@" f[i + 1]
      print old "=" new; exit
    }' "$1"
}

pulumi_ok() {
  [[ -x $BIN/pulumi ]] && [[ $("$BIN/pulumi" version 2>/dev/null) == "v$PULUMI_VERSION" ]]
}

K8S_LDFLAG="$K8S_PROVIDER_MOD/pkg/version.Version=$K8S_VERSION"
provider_ok() {
  # The version is read back from the binary's own build info (its -ldflags
  # and the sdk/v4 it was built against), so a binary built with other flags
  # or from other sources is not taken for this one. (-trimpath would drop
  # -ldflags from the build info, so the provider is built without it.)
  local info
  [[ -x $PROVIDER_BIN ]] || return 1
  info=$(go version -m "$PROVIDER_BIN" 2>/dev/null) || return 1
  grep -qF -- "-X $K8S_LDFLAG" <<<"$info" &&
    grep -qE "(dep|=>)[[:space:]]+($K8S_SDK_MOD[[:space:]]+v$K8S_VERSION|.*/sdk/v4@v$K8S_VERSION)([[:space:]]|\$)" <<<"$info"
}

PLUGIN_DIR=$PULUMI_HOME/plugins/resource-kubernetes-v$K8S_VERSION
plugin_ok() {
  [[ -x $PLUGIN_DIR/pulumi-resource-kubernetes ]] &&
    [[ ! -e $PLUGIN_DIR.partial ]] &&
    cmp -s "$PROVIDER_BIN" "$PLUGIN_DIR/pulumi-resource-kubernetes"
}

# ---------------------------------------------------------------------------
# 1. pulumi CLI
# pkg/v3 carries replace directives, so `go install pkg@version` is refused.
# A throwaway wrapper module requires pkg and sdk at the release and repeats
# pkg's clipboard replace (its sdk replace is a ../sdk path, covered by the
# plain sdk requirement).
build_pulumi() {
  local gomod clip wrap tmp
  log "building pulumi v$PULUMI_VERSION (cold: 4-8 minutes)"
  gomod=$(mod_field "$PULUMI_PKG@v$PULUMI_VERSION" GoMod)
  [[ -f $gomod ]] || die "no go.mod for $PULUMI_PKG@v$PULUMI_VERSION"
  clip=$(replace_of "$gomod" github.com/atotto/clipboard)
  [[ -n $clip ]] || die "no github.com/atotto/clipboard replace in $gomod"
  log "pkg's clipboard replace: $clip"

  wrap=$SRC/pulumi-cli-v$PULUMI_VERSION
  rm -rf "$wrap"
  mkdir -p "$wrap"
  # go get lists every module it adds; keep that in a log unless it fails.
  if ! (
    cd "$wrap"
    go mod init warren.local/pulumi-cli-wrapper
    go mod edit -replace="$clip"
    go get "$PULUMI_PKG/cmd/pulumi@v$PULUMI_VERSION" "$PULUMI_SDK@v$PULUMI_VERSION"
  ) >"$wrap/resolve.log" 2>&1; then
    tail -n 30 "$wrap/resolve.log" >&2
    die "resolving the pulumi wrapper module failed (log: $wrap/resolve.log)"
  fi
  grep -q "$PULUMI_SDK v$PULUMI_VERSION" "$wrap/go.mod" || die "wrapper did not settle on $PULUMI_SDK v$PULUMI_VERSION"

  tmp=$BIN/.pulumi.tmp.$$
  tmps+=("$tmp")
  (cd "$wrap" && go build -trimpath -o "$tmp" \
    -ldflags "-X $PULUMI_SDK/go/common/version.Version=v$PULUMI_VERSION" \
    "$PULUMI_PKG/cmd/pulumi") || die "go build pulumi failed"
  [[ $("$tmp" version) == "v$PULUMI_VERSION" ]] || die "built pulumi reports $("$tmp" version), want v$PULUMI_VERSION"
  mv -f "$tmp" "$BIN/pulumi"
  log "pulumi v$PULUMI_VERSION -> $BIN/pulumi"
}

# ---------------------------------------------------------------------------
# 2. Kubernetes provider
# The module zip has schema.json and terraform-mapping.json but not the
# schema-embed.json / terraform-mapping-embed.json that main.go embeds; the
# module's `go:generate` (generate.go) derives them, stamping the version into
# the schema. The provider's go.mod replaces sdk/v4 with ../sdk (the sibling
# directory in the upstream repo); here it points at sdk/v4@v$K8S_VERSION in
# the module cache. The module cache is read-only, so all of this happens in a
# copy under $SRC.
prepare_provider_src() {
  local dir=$1 stamp=$1/.warren-prepared moddir sdkdir tmp
  if [[ -f $stamp && $(cat "$stamp") == "$K8S_PROVIDER_MODVER $K8S_VERSION" ]]; then
    return 0
  fi
  log "preparing provider source $K8S_PROVIDER_MOD@$K8S_PROVIDER_MODVER"
  moddir=$(mod_field "$K8S_PROVIDER_MOD@$K8S_PROVIDER_MODVER" Dir)
  sdkdir=$(mod_field "$K8S_SDK_MOD@v$K8S_VERSION" Dir)
  [[ -d $moddir && -d $sdkdir ]] || die "provider or sdk module missing from the module cache"
  [[ -n $(replace_of "$moddir/go.mod" "$K8S_SDK_MOD") ]] ||
    log "note: provider go.mod no longer replaces $K8S_SDK_MOD"

  tmp=$SRC/.provider.tmp.$$
  tmps+=("$tmp")
  rm -rf "$tmp"
  cp -R "$moddir" "$tmp"
  chmod -R u+w "$tmp"
  (
    cd "$tmp"
    go mod edit -replace="$K8S_SDK_MOD=$sdkdir"
    # Upstream Makefile: cd provider && VERSION=<generic version> go generate cmd/pulumi-resource-kubernetes/main.go
    VERSION=$K8S_VERSION go generate ./cmd/pulumi-resource-kubernetes
  ) >&2 || die "generating the provider's embedded schema failed"
  [[ -s $tmp/cmd/pulumi-resource-kubernetes/schema-embed.json &&
     -s $tmp/cmd/pulumi-resource-kubernetes/terraform-mapping-embed.json ]] ||
    die "go generate did not produce the embed files"
  grep -qF "\"version\":\"$K8S_VERSION\"" "$tmp/cmd/pulumi-resource-kubernetes/schema-embed.json" ||
    die "schema-embed.json does not carry version $K8S_VERSION"
  echo "$K8S_PROVIDER_MODVER $K8S_VERSION" >"$tmp/.warren-prepared"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

build_provider() {
  local dir=$SRC/pulumi-kubernetes-provider-v$K8S_VERSION tmp sdkdir
  prepare_provider_src "$dir"
  # Re-point the sdk replace at the module cache as it is now (GOMODCACHE may
  # have moved or been cleaned since the source was prepared).
  sdkdir=$(mod_field "$K8S_SDK_MOD@v$K8S_VERSION" Dir)
  (cd "$dir" && go mod edit -replace="$K8S_SDK_MOD=$sdkdir") || die "go mod edit in $dir failed"
  log "building pulumi-resource-kubernetes v$K8S_VERSION (cold: 13-15 minutes)"
  tmp=$PROVIDER_BIN.tmp.$$
  tmps+=("$tmp")
  # Same build as upstream's Makefile (CGO_ENABLED=0, version via -ldflags).
  (cd "$dir" && go build -o "$tmp" -ldflags "-X $K8S_LDFLAG" ./cmd/pulumi-resource-kubernetes) ||
    die "go build pulumi-resource-kubernetes failed"
  mv -f "$tmp" "$PROVIDER_BIN"
  provider_ok || die "built provider does not carry version $K8S_VERSION"
  log "pulumi-resource-kubernetes v$K8S_VERSION -> $PROVIDER_BIN"
}

install_plugin() {
  log "installing resource plugin kubernetes v$K8S_VERSION into $PULUMI_HOME"
  "$BIN/pulumi" plugin install resource kubernetes "v$K8S_VERSION" --reinstall \
    --file "$PROVIDER_BIN" >&2 || die "pulumi plugin install failed"
  plugin_ok || die "plugin dir $PLUGIN_DIR does not hold the built provider"
  "$BIN/pulumi" plugin ls >&2
}

# ---------------------------------------------------------------------------
# A provider binary next to the CLI would shadow the installed plugin.
rm -f "$BIN"/pulumi-resource-*
if pulumi_ok; then log "pulumi v$PULUMI_VERSION: cached"; else build_pulumi; fi
if provider_ok; then log "pulumi-resource-kubernetes v$K8S_VERSION: cached"; else build_provider; fi
if plugin_ok; then log "kubernetes plugin v$K8S_VERSION: installed"; else install_plugin; fi
log "toolchain ready in $CACHE"

if $print_env; then
  q() { printf '%q' "$1"; }
  echo "export PATH=$(q "$BIN"):\"\$PATH\""
  echo "export PULUMI_HOME=$(q "$PULUMI_HOME")"
  echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
fi
