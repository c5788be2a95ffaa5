#!/usr/bin/env bash
# `make pulumi`: leave a working Pulumi CLI in .tools/pulumi/bin/ (git-ignored).
#
# No Pulumi release binary can be downloaded on these machines, but the CLI and the
# Python language host are Go programs published as Go modules, so they are built here
# from the Go module proxy, once per machine, into a cache outside the checkout
# (${BLUEGREEN_CACHE:-~/.cache/bluegreen}/pulumi-<cli>-<host>/), which every clone and
# CI run on the machine reuses. A compatible `pulumi` already on PATH (an ordinary
# install) is used as it is and nothing is built.
#
# Versions (decided, see docs/engine.md):
# - CLI: github.com/pulumi/pulumi/pkg/v3 at the pinned `pulumi` SDK's version when the
#   proxy serves it, else the lowest served release above it (a CLI newer than the SDK
#   is the supported direction). Stamped with that version: the Automation API checks it.
# - Language host: Pulumi's (sdk/python/cmd/pulumi-language-python/v3) is a module with
#   no tags that the Go module proxy here serves at no version, so a small launcher of
#   this project's (tools/language_host/main.go) is built against the CLI's own sdk/v3.
#   It decides nothing: it starts the SDK's exec shim and Python plugins (policy packs).
# - The exec shim and the dynamic-provider shim come from the CLI release's sdk/v3.
#   Policy packs run through the language host (RunPlugin); these releases ship no
#   analyzer shim and none is needed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/.tools/pulumi/bin"
CACHE="${BLUEGREEN_CACHE:-$HOME/.cache/bluegreen}"
SDK_PIN="v$(sed -n 's/^pulumi==\([0-9.]*\).*/\1/p' "$ROOT/requirements.txt")"
export GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

say() { printf '[make pulumi] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

[ "$SDK_PIN" != "v" ] || die "no 'pulumi==X.Y.Z' pin in requirements.txt"

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# 1. An ordinary install on PATH that is at least the SDK's version: use it as it is.
if command -v pulumi >/dev/null && command -v pulumi-language-python >/dev/null \
    && [ "$(command -v pulumi)" != "$OUT/pulumi" ]; then
    have="$(pulumi version 2>/dev/null || true)"
    if [ -n "$have" ] && version_ge "$have" "$SDK_PIN"; then
        say "using the Pulumi CLI on PATH: $(command -v pulumi) ($have >= SDK $SDK_PIN); nothing to build"
        exit 0
    fi
fi

# Go from the machine image (/usr/local/go) when it is not on PATH; Debian's golang-go is too old.
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || die "Go is needed to build the Pulumi CLI here (Debian: apt-get install golang), or install Pulumi: https://www.pulumi.com/docs/install/"

# 2. Which CLI release: the SDK's own if served, else the lowest served one above it.
if go list -m "github.com/pulumi/pulumi/pkg/v3@$SDK_PIN" >/dev/null 2>&1; then
    CLI="$SDK_PIN"
else
    served="$(go list -m -versions github.com/pulumi/pulumi/pkg/v3 2>/dev/null | tr ' ' '\n' | grep '^v3\.' | sort -V)" \
        || die "the Go module proxy lists no github.com/pulumi/pulumi/pkg/v3 versions"
    CLI="$(printf '%s\n' "$served" | while read -r v; do version_ge "$v" "$SDK_PIN" && { echo "$v"; break; }; done)"
    [ -n "$CLI" ] || die "no github.com/pulumi/pulumi/pkg/v3 release >= $SDK_PIN on the Go module proxy"
    say "pkg/v3 $SDK_PIN is not served by the Go module proxy; building the next release, $CLI (CLI newer than SDK $SDK_PIN)"
fi

HOST_SUM="$(sha256sum "$ROOT/tools/language_host/main.go" | cut -c1-12)"
DEST="$CACHE/pulumi-${CLI#v}"
work="$DEST/module"
started=$(date +%s)

link_out() {
    mkdir -p "$OUT"
    for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
        ln -sfn "$DEST/bin/$f" "$OUT/$f"
    done
    say "ready: $OUT/pulumi ($("$OUT/pulumi" version)), in $(( $(date +%s) - started ))s"
}

cli_ok() { [ -x "$DEST/bin/pulumi" ] && [ "$("$DEST/bin/pulumi" version 2>/dev/null)" = "$CLI" ]; }
host_ok() { [ -x "$DEST/bin/pulumi-language-python" ] && [ -f "$DEST/bin/.host-$HOST_SUM" ]; }

if cli_ok && host_ok; then
    say "reusing the cached build in $DEST"
    link_out
    exit 0
fi

# 3. One throwaway module for both programs: pkg/v3's go.mod replaces sdk/v3 with a
#    sibling folder, so `go install module@version` refuses it; requiring both at one
#    version works. Its other replace lines are repeated here (read from its go.mod).
mkdir -p "$work/languagehost" "$DEST/bin"
cp "$ROOT/tools/language_host/main.go" "$work/languagehost/main.go"
say "step 1/4: resolving github.com/pulumi/pulumi/pkg/v3@$CLI and its dependencies"
pkg_mod="$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@$CLI" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[ -f "$pkg_mod" ] || die "could not download github.com/pulumi/pulumi/pkg/v3@$CLI"
{
    echo "module bluegreen.local/pulumi-cli"
    echo
    grep -m1 '^go ' "$pkg_mod"
    echo
    echo "require ("
    echo "	github.com/pulumi/pulumi/pkg/v3 $CLI"
    echo "	github.com/pulumi/pulumi/sdk/v3 $CLI"
    echo ")"
    grep '^replace ' "$pkg_mod" | grep -v 'github.com/pulumi/pulumi/' || true
} >"$work/go.mod"
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >"$work/tools.go"
(cd "$work" && go mod tidy 2>&1 | grep -v '^go: downloading' >&2 || true)

if ! cli_ok; then
    say "step 2/4: compiling the Pulumi CLI $CLI (the long step: minutes, once per machine)"
    (cd "$work" && go build -trimpath -o "$DEST/bin/pulumi" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$CLI" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) &
    build=$!
    while kill -0 "$build" 2>/dev/null; do
        sleep 30
        kill -0 "$build" 2>/dev/null && say "  still compiling the CLI ($(( $(date +%s) - started ))s so far)"
    done
    wait "$build" || die "compiling the Pulumi CLI failed (see above)"
else
    say "step 2/4: the CLI $CLI is already built"
fi

# 4. The Python language host, against the same sdk/v3.
say "step 3/4: compiling pulumi-language-python (tools/language_host) against sdk/v3@$CLI"
rm -f "$DEST"/bin/.host-*
(cd "$work" && go vet ./languagehost && go build -trimpath -ldflags "-s -w -X main.version=${CLI#v}" \
    -o "$DEST/bin/pulumi-language-python" ./languagehost) \
    || die "compiling pulumi-language-python failed (see above)"

# 5. The Python shims, from the CLI release's own sdk/v3 module.
say "step 4/4: the Python shims from github.com/pulumi/pulumi/sdk/v3@$CLI"
sdk_dir="$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@$CLI" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
install -m 755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$DEST/bin/pulumi-language-python-exec"
install -m 755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$DEST/bin/pulumi-resource-pulumi-python"
touch "$DEST/bin/.host-$HOST_SUM"
say "built in $(( $(date +%s) - started ))s into $DEST"
link_out
