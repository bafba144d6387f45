#!/usr/bin/env bash
# A real image registry (Debian's docker-registry, the CNCF distribution) on this
# machine's loopback, for tests and air-gapped use.
#
#   scripts/registry.sh start  [--auth] [--port N] [--dir D]   prints HOST:PORT
#   scripts/registry.sh status [--dir D]                       prints HOST:PORT, exit 1 if down
#   scripts/registry.sh stop   [--dir D]                       stops it and removes its data
#
# - Listens on 127.0.0.1 only (default port 5000). Docker allows plain HTTP to
#   127.0.0.0/8 registries without any daemon setting, so push and pull just work.
# - Its config, data, log and pid live in D (default: $TMPDIR/stigmer-registry, or
#   /tmp/stigmer-registry); one directory per registry, so several can run at once.
# - Without --auth the config has no `auth:` section (anyone may push and pull). With
#   --auth it uses an htpasswd file (bcrypt, made with apache2-utils' `htpasswd -B`):
#   the user is $STIGMER_REGISTRY_USER (default: stigmer) and the password
#   $STIGMER_REGISTRY_PASSWORD (default: random); both are written to D/username and
#   D/password (mode 0600) for `docker login HOST:PORT -u "$(cat D/username)"
#   --password-stdin < D/password`.
# - Idempotent: `start` on a running registry prints its address (and refuses a
#   different --auth or --port); `stop` on a stopped one only removes what is left.
# - Installs docker-registry (and apache2-utils for --auth) with apt-get when missing
#   (Debian/Ubuntu as root); anywhere else it says what to install.
#
# Progress goes to stderr; stdout is only the address, so callers can capture it.
# Environment: STIGMER_REGISTRY_WAIT (seconds to wait for it to answer, default 30).
set -euo pipefail

readonly wait_s=${STIGMER_REGISTRY_WAIT:-30}
readonly realm=stigmer-registry

say() { printf 'registry: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "$1 is missing: install Debian's $2 package (sudo apt-get install $2), or run this as root on Debian/Ubuntu"
    fi
    say "installing $2"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$2" >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "$2" >&2
    fi
}

# The registry this directory describes, if its process is alive and is ours (a reused
# pid of another program is never signalled).
running_pid() {
    local pid
    [ -r "$dir/pid" ] || return 1
    pid=$(cat "$dir/pid")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/config.yml" || return 1
    printf '%s\n' "$pid"
}

# 200 without auth, 401 (with a Basic challenge) with it: either way it serves /v2/.
answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/v2/" || true)
    [ "$code" = 200 ] || [ "$code" = 401 ]
}

write_config() {
    local auth_section=
    if [ "$auth" = 1 ]; then
        auth_section="auth:
  htpasswd:
    realm: $realm
    path: $dir/htpasswd"
    fi
    # secret: signs upload state; fixed per registry so restarts keep uploads valid.
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  fields:
    service: stigmer-registry
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  headers:
    X-Content-Type-Options: [nosniff]
$auth_section
EOF
}

write_htpasswd() {
    local user=${STIGMER_REGISTRY_USER:-stigmer}
    local password=${STIGMER_REGISTRY_PASSWORD:-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')}
    (
        umask 077
        printf '%s\n' "$user" >"$dir/username"
        printf '%s\n' "$password" >"$dir/password"
    )
    # -i: the password from stdin, never on a command line that ps can show.
    printf '%s\n' "$password" | htpasswd -B -i -c "$dir/htpasswd" "$user" 2>/dev/null
}

start() {
    local pid
    if pid=$(running_pid); then
        local running_port running_auth=0
        running_port=$(cat "$dir/port")
        [ -f "$dir/htpasswd" ] && running_auth=1
        [ "$port_given" = 0 ] || [ "$port" = "$running_port" ] ||
            die "a registry already runs from $dir on port $running_port: stop it first (scripts/registry.sh stop --dir $dir)"
        [ "$auth" = "$running_auth" ] ||
            die "a registry already runs from $dir $( [ "$running_auth" = 1 ] && echo with || echo without) auth: stop it first (scripts/registry.sh stop --dir $dir)"
        say "already running (pid $pid) from $dir"
        printf '127.0.0.1:%s\n' "$running_port"
        return 0
    fi

    command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry docker-registry
    if [ "$auth" = 1 ]; then
        command -v htpasswd >/dev/null 2>&1 || apt_install htpasswd apache2-utils
    fi
    command -v curl >/dev/null 2>&1 || die "curl is missing: install it (sudo apt-get install curl)"

    if answers "127.0.0.1:$port"; then
        die "something else already serves a registry on 127.0.0.1:$port: pick another --port"
    fi

    rm -rf "$dir"
    mkdir -p "$dir/data"
    chmod 0700 "$dir"
    [ "$auth" = 1 ] && write_htpasswd
    write_config
    printf '%s\n' "$port" >"$dir/port"

    # setsid + nohup + closed stdio: it outlives this script and holds no caller's pipe.
    setsid nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$dir/pid"

    local started=$SECONDS
    until answers "127.0.0.1:$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$dir/registry.log" >&2 || true
            die "docker-registry exited during start-up (log above, and in $dir/registry.log)"
        fi
        if (( SECONDS - started >= wait_s )); then
            tail -n 20 "$dir/registry.log" >&2 || true
            kill "$pid" 2>/dev/null || true
            die "docker-registry did not answer on 127.0.0.1:$port within ${wait_s}s"
        fi
        sleep 0.2
    done
    say "serving 127.0.0.1:$port from $dir (pid $pid, $( [ "$auth" = 1 ] && echo "htpasswd auth, user $(cat "$dir/username")" || echo "no auth"))"
    printf '127.0.0.1:%s\n' "$port"
}

stop() {
    local pid
    if pid=$(running_pid); then
        kill "$pid"
        local started=$SECONDS
        while kill -0 "$pid" 2>/dev/null; do
            if (( SECONDS - started >= 10 )); then
                say "pid $pid ignored SIGTERM for 10s; killing it"
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
        say "stopped pid $pid"
    else
        say "not running from $dir"
    fi
    # Only a directory this script made (it has our config) is removed.
    if [ -d "$dir" ]; then
        if [ -f "$dir/config.yml" ] || [ -z "$(ls -A "$dir")" ]; then
            rm -rf "$dir"
        else
            die "$dir does not look like a registry directory of this script; not removing it"
        fi
    fi
}

status() {
    local pid
    if pid=$(running_pid) && answers "127.0.0.1:$(cat "$dir/port")"; then
        say "running (pid $pid) from $dir$( [ -f "$dir/htpasswd" ] && echo ", htpasswd auth")"
        printf '127.0.0.1:%s\n' "$(cat "$dir/port")"
        return 0
    fi
    say "not running from $dir"
    return 1
}

main() {
    [ "$#" -ge 1 ] || usage
    local command=$1
    shift
    auth=0
    port=5000
    port_given=0
    dir=${TMPDIR:-/tmp}/stigmer-registry
    while [ "$#" -gt 0 ]; do
        case $1 in
            --auth) auth=1; shift ;;
            --port) [ "$#" -ge 2 ] || usage; port=$2; port_given=1; shift 2 ;;
            --dir) [ "$#" -ge 2 ] || usage; dir=$2; shift 2 ;;
            -h|--help) usage ;;
            *) say "unknown argument: $1"; usage ;;
        esac
    done
    case $port in
        ''|*[!0-9]*) die "--port must be a number, not '$port'" ;;
    esac
    # Absolute, because the registry's config and the pid check use it.
    mkdir -p "$(dirname "$dir")"
    dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")

    case $command in
        start) start ;;
        stop) stop ;;
        status) status ;;
        *) say "unknown command: $command"; usage ;;
    esac
}

main "$@"
