# SWE-ReX's server (swerex-remote) on top of the benchmark's base image, so SWE-ReX starts
# its sandboxes from the same Debian bookworm as every other contender.
#
# Built by benchmarks/sandbox_latency.py; the build context holds only wheels/, which the
# script downloads on the host with the peer venv's pip (same Python 3.11, same platform).
# The install runs offline (--no-index), so the build needs no registry and no network;
# pip itself runs from its wheel because Debian's minbase python3 has no pip or ensurepip.
ARG BASE_IMAGE=stigmer/sandbox-base:bookworm
FROM ${BASE_IMAGE}
ARG SWEREX_VERSION
COPY wheels /tmp/wheels
RUN python3 -m venv --without-pip /opt/swerex \
 && /opt/swerex/bin/python3 "$(ls /tmp/wheels/pip-*.whl)/pip" install --quiet --no-cache-dir \
        --no-index --find-links /tmp/wheels "swe-rex==${SWEREX_VERSION}" \
 && ln -s /opt/swerex/bin/swerex-remote /usr/local/bin/swerex-remote \
 && rm -rf /tmp/wheels \
 && swerex-remote --help >/dev/null
