#!/bin/sh
# Trust extra CA certificates system-wide in a Debian image (a TLS-inspecting proxy's
# root, a private registry's CA, ...), so apt, pip, npm, curl and git all accept them.
#
#   add-ca-certs.sh [--skip FILE]... FILE...
#
# Each FILE may hold one certificate or a whole bundle. Bundles are split into one
# file per certificate, because update-ca-certificates / `openssl rehash` only index
# single-certificate files. Certificates the image already trusts, or found in a
# --skip FILE, are not added: pass a host's own distribution roots as --skip when
# importing the host's whole bundle, so only its local additions (the corporate CA)
# come in, and not roots the image's newer ca-certificates dropped on purpose.
# Used by the sandbox Dockerfiles and scripts/build-base-image.sh; installed in the
# images as stigmer-add-ca-certs so that derived images can use it too.
set -eu

dest=/usr/local/share/ca-certificates/stigmer
bundle=/etc/ssl/certs/ca-certificates.crt

known=$(mktemp)
trap 'rm -f "$known"' EXIT
# A newline after each file: a last line without one would merge with the next file's.
if [ -f "$bundle" ]; then { cat "$bundle"; echo; } >>"$known"; fi
while [ "$#" -gt 0 ]; do
    case $1 in
        --skip) { cat "$2"; echo; } >>"$known"; shift 2 ;;
        *) break ;;
    esac
done
[ "$#" -gt 0 ] || exit 0

mkdir -p "$dest"
# Number new files after the ones a previous run left, so runs never overwrite.
start=$(find "$dest" -name '*.crt' | wc -l)

added=$(awk -v dest="$dest" -v n="$start" -v known_file="$known" '
    { sub(/\r$/, "") }
    /-----BEGIN CERTIFICATE-----/ { pem = ""; inside = 1 }
    inside { pem = pem $0 "\n" }
    /-----END CERTIFICATE-----/ && inside {
        inside = 0
        if (FILENAME == known_file) { seen[pem] = 1; next }
        if (pem in seen) next
        seen[pem] = 1
        out = sprintf("%s/extra-%03d.crt", dest, ++n)
        printf "%s", pem > out
        close(out)
        added++
    }
    END { print added + 0 }
' "$known" "$@")

echo "add-ca-certs: $added new CA certificate(s) from $*"
[ "$added" -eq 0 ] || update-ca-certificates
