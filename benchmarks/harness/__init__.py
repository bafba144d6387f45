"""What the benchmark's driver and its contenders share: the run's configuration, timing
loops, rows and their statistics, memory readings, the report, the worker protocol and the
clean-up.

Peer workers import it from the throwaway peer venv, where the project is not installed: at
import time it needs the standard library only (docker-py is imported where it is used).

- :mod:`harness.config`: :class:`~harness.config.Config`, sent to workers as JSON; ``log``.
- :mod:`harness.timing`: ``repeat``, ``interleave``, ``arepeat``, ``threaded_first_output``...
- :mod:`harness.results`: rows, their median and p90; a failed measurement becomes a skipped row.
- :mod:`harness.memory`: the runner's RSS, children included, per idle session.
- :mod:`harness.workers`: running one peer in a subprocess of the peer venv, both sides.
- :mod:`harness.cleanup`: finding and removing every container a run left.
- :mod:`harness.report`: the Markdown table, its order, targets and earlier numbers.
"""
