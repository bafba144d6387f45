#!/usr/bin/env bash
# Provide a Debian bookworm base image for the sandbox Dockerfiles, even with no image
# registry in reach.
#
#   scripts/build-base-image.sh [TAG]        (default TAG: stigmer/sandbox-base:bookworm)
#   docker build --build-arg BASE_IMAGE="$(scripts/build-base-image.sh)" ...
#
# Progress goes to stderr; stdout is only the tag, so callers can capture it.
# 1. TAG already present: done (cached by tag; `docker rmi TAG` to rebuild).
# 2. debian:bookworm-slim can be pulled: derive TAG from it.
# 3. Otherwise (no registry, as on the project's build machine): debootstrap a minbase
#    bookworm and `docker import` it. Needs root; installs debootstrap when missing.
# Either way TAG holds bash, python3, git, curl, jq, ca-certificates and procps, trusts
# the host's CA bundle (so pip/npm/curl work behind a TLS-inspecting proxy) and has
# slim's docs/locales trimming. Build host architecture only.
#
# Environment: STIGMER_DEBIAN_MIRROR (default: the host's apt mirror for bookworm, else
# http://deb.debian.org/debian), STIGMER_HOST_CA_BUNDLE (default:
# /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail

readonly tag=${1:-stigmer/sandbox-base:bookworm}
readonly suite=bookworm
readonly packages=bash,python3,git,curl,jq,ca-certificates,procps
readonly host_ca=${STIGMER_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
readonly host_roots=/usr/share/ca-certificates  # Debian/Ubuntu: the packaged roots
readonly pull_timeout_s=20
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly add_ca_certs=$here/../sandbox/add-ca-certs.sh

say() { printf 'build-base-image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# The build context or root filesystem being assembled; removed on any exit.
scratch=
cleanup() {
    [ -n "$scratch" ] && [ -d "$scratch" ] || return 0
    # debootstrap mounts /proc and /sys inside the target and can leave them mounted
    # when it fails; unmount first, and never let rm cross into another filesystem.
    awk -v r="$scratch" 'index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$scratch"
}
trap cleanup EXIT

finish() {
    say "built $tag in $(( SECONDS - started ))s ($(image_size "$tag"), via $1)"
    printf '%s\n' "$tag"
}

# Copy the host CA bundle and the host distribution's own roots into DIR as host-ca.crt
# and host-roots.crt (empty when absent, as on macOS). add-ca-certs.sh skips the roots,
# so only the host's local additions (a proxy's CA) come in, and not roots that the
# image's newer ca-certificates dropped on purpose (such as TrustCor).
stage_host_ca() {
    : >"$1/host-ca.crt"
    : >"$1/host-roots.crt"
    [ -s "$host_ca" ] || return 0
    cp "$host_ca" "$1/host-ca.crt"
    if [ -d "$host_roots" ]; then
        find "$host_roots" -name '*.crt' -exec awk 1 {} + >"$1/host-roots.crt"
    fi
}

# --- path 2: a registry is reachable --------------------------------------------------

# Same packages and CA handling as the debootstrap path, so the result does not depend on
# which path ran. slim already drops docs and locales.
build_from_pulled_slim() {
    local ctx
    scratch=$(mktemp -d)
    ctx=$scratch
    cp "$add_ca_certs" "$ctx/add-ca-certs.sh"
    stage_host_ca "$ctx"
    cat >"$ctx/Dockerfile" <<EOF
FROM debian:$suite-slim
COPY add-ca-certs.sh host-ca.crt host-roots.crt /tmp/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages//,/ } \\
 && rm -rf /var/lib/apt/lists/* \\
 && sh /tmp/add-ca-certs.sh --skip /tmp/host-roots.crt /tmp/host-ca.crt \\
 && rm -f /tmp/add-ca-certs.sh /tmp/host-ca.crt /tmp/host-roots.crt
CMD ["bash"]
EOF
    docker build -q -t "$tag" "$ctx" >/dev/null
}

# --- path 3: offline, debootstrap -------------------------------------------------------

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$@" >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "$@" >&2
    fi
}

# "URI SUITE" for every enabled deb source on the host, one-line and deb822 formats.
host_apt_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = "" }
        {
            types = uris = suites = ""; enabled = 1
            n = split($0, lines, "\n")
            for (l = 1; l <= n; l++) {
                if (lines[l] ~ /^[ \t]*#/) continue
                split(lines[l], kv, ":[ \t]*")
                key = tolower(kv[1]); val = substr(lines[l], index(lines[l], ":") + 1)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled" && val ~ /no/) enabled = 0
            }
            if (!enabled || (" " types " ") !~ /[ \t]deb[ \t]/) next
            nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
            for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) if (u[i] != "" && s[j] != "") print u[i], s[j]
        }' "$f"
    done
}

# The host's mirror for SUITE (so a proxy or local mirror it uses is used here too),
# else DEFAULT.
host_mirror_for() {
    local uri
    uri=$(host_apt_sources | awk -v s="$1" '$2 == s { print $1; exit }')
    printf '%s\n' "${uri:-$2}"
}

build_with_debootstrap() {
    [ "$(id -u)" -eq 0 ] || die "no registry is reachable and debootstrap needs root: re-run as root (sudo $0 $tag)"
    command -v apt-get >/dev/null 2>&1 || die "no registry is reachable and this host has no apt-get for debootstrap"
    # debian-archive-keyring verifies the bookworm Release file (not preinstalled on Ubuntu).
    if ! command -v debootstrap >/dev/null 2>&1 || ! [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
        say "installing debootstrap"
        apt_install debootstrap debian-archive-keyring
    fi

    local mirror security
    mirror=${STIGMER_DEBIAN_MIRROR:-$(host_mirror_for "$suite" http://deb.debian.org/debian)}
    security=$(host_mirror_for "$suite-security" http://deb.debian.org/debian-security)

    local rootfs
    rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/stigmer-rootfs.XXXXXX")
    scratch=$rootfs
    say "debootstrap $suite from $mirror (minbase + $packages)"
    local t0=$SECONDS
    debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2 ||
        { tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2 2>/dev/null || true; die "debootstrap failed"; }
    say "debootstrap took $(( SECONDS - t0 ))s"

    # Same sources as debian:bookworm-slim (updates and security too), and its apt and
    # dpkg settings: no caches kept in layers, no translations, no docs/man/locales.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    # debootstrap installs the point release; take bookworm-updates and security fixes
    # too, as debian:bookworm-slim (rebuilt regularly) would have them.
    say "applying $suite-updates and $suite-security"
    chroot "$rootfs" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get -y -q upgrade' >&2

    # Apply the same exclusions to what debootstrap already installed.
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian}/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

    cp "$add_ca_certs" "$rootfs/tmp/add-ca-certs.sh"
    stage_host_ca "$rootfs/tmp"
    chroot "$rootfs" sh /tmp/add-ca-certs.sh --skip /tmp/host-roots.crt /tmp/host-ca.crt >&2

    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache
    find "$rootfs/var/log" -type f -delete
    # Written by the host at container start; must not leak from the build host.
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"

    say "importing into $tag"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase + $packages (stigmer sandbox base)\"" \
        - "$tag" >/dev/null
}

# Bounded, because an unreachable registry can also hang rather than fail (no `timeout`
# on stock macOS, where Docker Desktop normally reaches Docker Hub anyway).
pull_slim() {
    if command -v timeout >/dev/null 2>&1; then
        timeout "$pull_timeout_s" docker pull -q "debian:$suite-slim"
    else
        docker pull -q "debian:$suite-slim"
    fi
}

main() {
    started=$SECONDS
    if docker image inspect "$tag" >/dev/null 2>&1; then
        say "$tag is present ($(image_size "$tag")); \`docker rmi $tag\` to rebuild"
        printf '%s\n' "$tag"
        return 0
    fi

    if pull_slim >/dev/null 2>&1; then
        say "pulled debian:$suite-slim; deriving $tag"
        build_from_pulled_slim
        finish "debian:$suite-slim"
    else
        say "debian:$suite-slim cannot be pulled (no registry reachable); building offline"
        build_with_debootstrap
        finish debootstrap
    fi
}

main "$@"
