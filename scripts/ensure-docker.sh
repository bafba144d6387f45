#!/usr/bin/env bash
# Make a Docker engine available to this machine, idempotently.
#
#   scripts/ensure-docker.sh
#
# - Engine already answering `docker info`: exit 0 at once.
# - Debian/Ubuntu as root: install docker.io with apt-get when dockerd is missing,
#   start dockerd (through systemd when it runs, else detached by hand, logging to
#   $STIGMER_DOCKERD_LOG, default /var/log/dockerd.log) and wait until it answers.
# - Anything else (not root, another distribution, macOS): fail with what to do.
#
# Used by `make test` and `.ci/run` (CI=true on a fresh root machine, where a missing
# engine must be a failure, never a skipped test).
set -euo pipefail

readonly log_file=${STIGMER_DOCKERD_LOG:-/var/log/dockerd.log}
readonly wait_s=${STIGMER_DOCKERD_WAIT:-60}

say() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# `docker info` can hang on a socket whose daemon is stuck; bound it where `timeout`
# exists (coreutils; absent on stock macOS, where Docker Desktop answers or refuses fast).
engine_up() {
    command -v docker >/dev/null 2>&1 || return 1
    if command -v timeout >/dev/null 2>&1; then
        timeout 15 docker info >/dev/null 2>&1
    else
        docker info >/dev/null 2>&1
    fi
}

server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'; }

# Install Debian packages; refresh the package lists only when the install fails,
# because a fresh machine or container often ships without lists (or stale ones).
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$@"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "$@"
    fi
}

is_debian_like() {
    [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}

unsupported() {
    case "$(uname -s)" in
        Darwin)
            die "no Docker engine answers. Install Docker Desktop (https://docs.docker.com/desktop/setup/install/mac-install/)
  or Colima (brew install colima docker && colima start), start it, then re-run."
            ;;
        Linux)
            if [ "$(id -u)" -ne 0 ]; then
                if [ -S /var/run/docker.sock ] && ! [ -w /var/run/docker.sock ]; then
                    die "the engine runs but $(id -un) may not use /var/run/docker.sock.
  Add yourself to the docker group and log in again:  sudo usermod -aG docker $(id -un)"
                fi
                die "no Docker engine answers. Start it (sudo systemctl start docker, or sudo $0),
  or install it first (Debian/Ubuntu: sudo apt-get install docker.io; others: https://docs.docker.com/engine/install/)."
            fi
            die "no Docker engine answers and this is not Debian/Ubuntu, so this script will not install one.
  Install Docker Engine for your distribution (https://docs.docker.com/engine/install/), start it, then re-run."
            ;;
        *)
            die "no Docker engine answers on $(uname -s). Install and start Docker (https://docs.docker.com/get-docker/)."
            ;;
    esac
}

print_log_tail() {
    if [ -f "$log_file" ]; then
        say "last lines of $log_file:"
        tail -n 30 "$log_file" >&2
    fi
}

# A dockerd that is already running but not answering yet (still starting) must be
# waited for, not doubled: a second one would fail on the same pid file and socket.
running_dockerd_pid() {
    local pid
    [ -r /var/run/docker.pid ] || return 1
    pid=$(cat /var/run/docker.pid)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

start_dockerd() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        say "starting docker.service through systemd"
        systemctl start docker.service && return 0
        say "systemctl start docker failed; starting dockerd by hand"
    fi
    mkdir -p "$(dirname "$log_file")"
    say "starting dockerd (log: $log_file)"
    # setsid + nohup + closed stdio: dockerd must outlive this script and must not hold
    # the caller's pipes open (CI captures our output).
    setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
    dockerd_pid=$!
}

main() {
    if engine_up; then
        say "engine $(server_version) is up"
        return 0
    fi

    if [ "$(uname -s)" != Linux ] || [ "$(id -u)" -ne 0 ] || ! is_debian_like; then
        unsupported
    fi

    if ! command -v dockerd >/dev/null 2>&1; then
        say "dockerd is missing; installing docker.io"
        # docker.io pulls in containerd, runc, iptables and tini (docker-init, needed for
        # `docker run --init`); ca-certificates is only a recommend but pulls need it.
        apt_install docker.io ca-certificates
        # On a systemd machine the package has just started the service.
        if engine_up; then
            say "engine $(server_version) is up"
            return 0
        fi
    fi

    dockerd_pid=$(running_dockerd_pid || true)
    if [ -n "$dockerd_pid" ]; then
        say "dockerd (pid $dockerd_pid) is running; waiting for it to answer"
    else
        dockerd_pid=
        start_dockerd
    fi

    local start=$SECONDS
    until engine_up; do
        if [ -n "$dockerd_pid" ] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
            print_log_tail
            die "dockerd exited during start-up"
        fi
        if (( SECONDS - start >= wait_s )); then
            print_log_tail
            die "dockerd did not answer within ${wait_s}s"
        fi
        sleep 1
    done
    say "engine $(server_version) is up after $(( SECONDS - start ))s"
}

main "$@"
