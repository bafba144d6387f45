"""The launcher each command runs under in a Daytona session, and the marks it prints.

Daytona's daemon runs a session command by *sourcing* it in the session's long-lived
shell (zsh, bash or sh), with stdout and stderr each read a line at a time into one log.
Nothing of ours runs in that shell itself (an ``exit`` would end it; ``set -e``, traps and
variables would leak): each command is ``bash -c DRIVER ...``, a child, which

- sources the session's state from fd 4 (``export``/``unset``/``cd``, written by the
  runner, which keeps cwd and variables between commands) and runs the command, passed as
  an argument (or, when long, on fd 3) under the state wrapper of
  :mod:`agent_runner.backends.executor`, as the leader of a session of its own, with
  stdin from ``/dev/null`` (or, for a process, from a relay that decodes base64 lines the
  runner sends, ``.`` closing it);
- writes ``PID DRIVER [RELAYS]`` to a pid file, so one more call can kill the whole tree
  (:mod:`agent_runner.backends.launcher`; the toolbox has no kill endpoint);
- sends the command's output to files, never to the daemon's pipes, so a background child
  that keeps its output open cannot hold the session: *live*, ``tail --pid`` relays each
  file as it grows and stops once the command is gone; otherwise the file is printed
  when the command ends, its middle cut to ``cap`` bytes in the sandbox (a long output is
  never carried across just to be dropped);
- ends each stream with a mark, ``@TOKEN@end`` (stdout: the exit code and the recorded
  state, base64), and marks a cut as ``@TOKEN@gap DROPPED``: the runner learns everything
  from the stream itself and stops reading on the marks, without asking for the exit code
  and without the daemon's second of trailing silence.

What the daemon's line reading does to output stays true here: NUL bytes are lost, and
invalid UTF-8 arrives replaced (the SDK decodes text).
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_runner.backends.executor import LONG_COMMAND, bash_arguments

DRIVER = r"""__st_d=$1 __st_n=$2 __st_t=$3 __st_live=$4 __st_cap=$5 __st_input=$6; shift 6
__st_o=$__st_d/$__st_n.out __st_e=$__st_d/$__st_n.err __st_p=$__st_d/$__st_n.pid
__st_i=/dev/null __st_f= __st_r= __st_st= __st_S=
: >"$__st_o" && : >"$__st_e" || exit 125
{ . /dev/fd/4; } 2>/dev/null; exec 4<&-
if [ "$__st_input" = 1 ]; then
  __st_i=$__st_d/$__st_n.in; rm -f "$__st_i"; mkfifo "$__st_i" || exit 125
  { while IFS= read -r __st_l; do [ "$__st_l" = . ] && break
    printf %s "$__st_l" | base64 -d; done; } <&0 >"$__st_i" & __st_f=$!
fi
if command -v setsid >/dev/null 2>&1; then setsid bash "$@" <"$__st_i" >"$__st_o" 2>"$__st_e" &
else bash "$@" <"$__st_i" >"$__st_o" 2>"$__st_e" & fi
__st_c=$!
exec 3<&-
if [ "$__st_live" = 1 ]; then
  tail -q -s 0.02 --pid="$__st_c" -c +1 -f "$__st_o" & __st_r=$!
  tail -q -s 0.02 --pid="$__st_c" -c +1 -f "$__st_e" >&2 & __st_r="$__st_r $!"
fi
echo "$__st_c $$ $__st_r" >"$__st_p"
[ -e "$__st_p.kill" ] && kill -"$(cat "$__st_p.kill")" -- "-$__st_c" 2>/dev/null
[ "$__st_input" = 1 ] && printf '@%s@start\n' "$__st_t"
{ wait "$__st_c"; } 2>/dev/null; __st_x=$?
[ -z "$__st_r" ] || wait $__st_r
__st_emit() {
  __st_z=$(wc -c <"$1")
  if [ "$__st_z" -le "$__st_cap" ]; then cat "$1"; else
    __st_h=$((__st_cap / 2)); head -c "$__st_h" "$1"
    printf '@%s@gap %s\n' "$__st_t" "$((__st_z - __st_cap))"; tail -c "$((__st_cap - __st_h))" "$1"
  fi
}
[ "$__st_live" = 1 ] || { __st_emit "$__st_o"; __st_emit "$__st_e" >&2; }
[ -n "$__st_S" ] && [ -s "$__st_S" ] && __st_st=$(base64 -w0 "$__st_S")
[ -z "$__st_f" ] || kill "$__st_f" 2>/dev/null
rm -f "$__st_o" "$__st_e" "$__st_p" "$__st_p.kill" ${__st_S:+"$__st_S"} ${__st_f:+"$__st_i"}
printf '@%s@end\n' "$__st_t" >&2
printf '@%s@end %s %s\n' "$__st_t" "$__st_x" "$__st_st"
"""
SETUP = r"""__st_t=$1 __st_d=$2 __st_a=$3 __st_w=$HOME/workspace __st_m= __st_c=0
mkdir -p "$__st_d" "$__st_w" || exit 3
for __st_x in tail base64 setsid mkfifo head wc cat; do
  command -v "$__st_x" >/dev/null 2>&1 || __st_m="$__st_m,$__st_x"; done
[ -e "$HOME/.stigmer-workspace" ] && __st_c=1
if [ -n "$__st_a" ] && [ "$__st_c" = 0 ]; then
  tar -xf "$__st_a" -C "$__st_w" && : >"$HOME/.stigmer-workspace" || exit 4
fi
[ -z "$__st_a" ] || rm -f "$__st_a"
printf '@%s@setup %s %s %s\n' "$__st_t" "${__st_m:-,}" "$__st_c" "$__st_w"
"""
"""Once per shell: the runner's directory for pid and output files, the workspace (the
upload unpacked unless a previous runner's copy is there), and the tools the driver needs."""
LEFTOVERS = r"""for __st_f in /tmp/.stigmer/*/*.pid; do
  [ -e "$__st_f" ] || continue
  read -r __st_p __st_d __st_r <"$__st_f" || continue
  kill -KILL -- "-$__st_p" 2>/dev/null; [ -z "$__st_r" ] || kill -KILL $__st_r 2>/dev/null
done; rm -rf /tmp/.stigmer/*; exit 0
"""
"""Kills every tree the pid files of earlier shells name, and their files: what a gone
runner left in a sandbox taken over. Ending its sessions is not enough: the daemon signals
a session's process group and then its descendants, and a command in a session of its own
whose parent died first is no longer a descendant by then."""
CHANGES = r"""__st_t=$1 __st_w=$2 __st_o=$3
cd "$__st_w" || exit 3
find . -newer "$HOME/.stigmer-workspace" \( -type f -o -type l \) -print0 \
  | tar --null -T - -cf "$__st_o" || exit 4
printf '@%s@end 0 \n' "$__st_t"
"""
"""The files of the workspace copy changed since it was unpacked, as a tar to download."""


@dataclass(frozen=True)
class Launch:
    """One run of the driver: its number, mark token and files in the sandbox."""

    number: int
    token: str
    directory: str

    @property
    def pid_file(self) -> str:
        return f"{self.directory}/{self.number}.pid"

    @property
    def state_file(self) -> str:
        return f"{self.directory}/{self.number}.state"


def command_text(
    launch: Launch,
    command: str,
    prelude: str,
    *,
    live: bool,
    cap: int,
    stdin: bool,
    capture: bool,
) -> str:
    """What the daemon sources: the driver, its arguments, and the heredocs on fds 3 and 4."""
    long = len(command) > LONG_COMMAND
    wrapped = bash_arguments(command, launch.state_file if capture else None, 3 if long else None)
    flags = ["1" if live else "0", str(cap), "1" if stdin else "0"]
    head = ["bash", "-c", DRIVER, "stigmer", launch.directory, str(launch.number), launch.token]
    line = shlex.join([*head, *flags, *wrapped])
    state = f"__st_S={shlex.quote(launch.state_file if capture else '')}\n"
    return _with_heredocs(line, launch.token, command if long else "", state + prelude)


def script_text(script: str, token: str, *arguments: str) -> str:
    """A helper script (:data:`SETUP`, :data:`CHANGES`) as a session command."""
    return shlex.join(["bash", "-c", script, "stigmer", token, *arguments])


def _with_heredocs(line: str, token: str, command: str, prelude: str) -> str:
    three, four = f"__STIGMER_COMMAND_{token}", f"__STIGMER_STATE_{token}"
    return f"{line} 3<<'{three}' 4<<'{four}'\n{command}\n{three}\n{prelude}\n{four}\n"


def prelude(cwd: str, env: dict[str, str], unset: set[str] | frozenset[str] = frozenset()) -> str:
    """The session's state as shell code the driver sources before the command."""
    lines = []
    if env:
        lines.append("export -- " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()))
    if gone := sorted(set(unset) - env.keys()):
        lines.append("unset -v -- " + " ".join(shlex.quote(name) for name in gone))
    lines.append(f"cd -- {shlex.quote(cwd)} 2>/dev/null || cd /")
    return "\n".join(lines)


@dataclass
class Marks:
    """One stream of a driver run: its content goes to ``feed``, its marks are read."""

    token: str
    feed: Callable[[bytes], None]
    skip: Callable[[int], None] = lambda dropped: None
    ended: bool = False
    started: bool = False
    fields: list[str] = field(default_factory=list)
    _pending: str = ""

    @property
    def mark(self) -> str:
        return f"@{self.token}@"

    def push(self, text: str) -> None:
        if self.ended:
            return
        self._pending += text
        mark = self.mark
        while not self.ended:
            at = self._pending.find(mark)
            if at < 0:
                keep = next(
                    (
                        k
                        for k in range(min(len(mark) - 1, len(self._pending)), 0, -1)
                        if self._pending.endswith(mark[:k])
                    ),
                    0,
                )
                self._emit(self._pending[: len(self._pending) - keep])
                self._pending = self._pending[len(self._pending) - keep :]
                return
            self._emit(self._pending[:at])
            end = self._pending.find("\n", at)
            if end < 0:
                self._pending = self._pending[at:]
                return
            record = self._pending[at + len(mark) : end].split(" ")
            self._pending = self._pending[end + 1 :]
            self._record(record)

    def _record(self, record: list[str]) -> None:
        kind = record[0]
        if kind == "start":
            self.started = True
        elif kind == "gap" and len(record) > 1 and record[1].isdigit():
            self.skip(int(record[1]))
        elif kind in ("end", "setup"):
            self.ended = True
            self.fields = record[1:]

    def _emit(self, text: str) -> None:
        if text:
            self.feed(text.encode("utf-8", "surrogateescape"))

    @property
    def exit_code(self) -> int | None:
        return int(self.fields[0]) if self.fields and self.fields[0].lstrip("-").isdigit() else None

    @property
    def state(self) -> bytes:
        """What the state wrapper recorded (empty when the command did not get there)."""
        raw = self.fields[1] if len(self.fields) > 1 else ""
        return base64.b64decode(raw) if raw else b""
