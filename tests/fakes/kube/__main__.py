"""``python -m tests.fakes.kube``: the fake cluster from a shell, until Ctrl-C.

Prints the server URL and the kubeconfig path (``export KUBECONFIG=...`` and any client,
kubectl included, talks to it); on exit every container it created is removed.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.kube.server import FakeKube


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.kube", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)"
    )
    parser.add_argument(
        "--token", default="stigmer-fake-token", help="bearer token to require ('' for none)"
    )
    parser.add_argument("--network", default="bridge", help="Docker network for the pods")
    options = parser.parse_args()
    done = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: done.set())
    fake = FakeKube(port=options.port, token=options.token or None, network=options.network)
    fake.start()
    try:
        print(f"url: {fake.url}", flush=True)
        print(f"kubeconfig: {fake.kubeconfig}", flush=True)
        done.wait()
    finally:
        fake.stop()
        print("stopped; containers removed", flush=True)


if __name__ == "__main__":
    main()
