import asyncio

import pytest

from agent_runner.output import HIGH_WATER, CappedBuffer, OutputCollector
from agent_runner.results import OutputChunk, Stream


def test_small_output_is_kept_whole():
    buffer = CappedBuffer(1024)
    for piece in (b"abc", b"def", b"\n"):
        buffer.write(piece)
    assert buffer.text() == "abcdef\n"
    assert buffer.dropped == 0


def test_large_output_keeps_head_and_tail_with_a_marker():
    buffer = CappedBuffer(100)
    data = b"".join(f"{i:04d}\n".encode() for i in range(1000))
    for start in range(0, len(data), 7):
        buffer.write(data[start : start + 7])
    text = buffer.text()
    assert text.startswith("0000\n0001\n")
    assert text.endswith("0998\n0999\n")
    assert buffer.dropped == len(data) - 100
    assert f"[... {len(data) - 100} bytes of output dropped ...]" in text


def test_cut_inside_a_multibyte_character_is_not_garbled():
    buffer = CappedBuffer(10)
    buffer.write("é".encode() * 40)
    head, _, tail = buffer.text().partition("\n[...")
    assert "\ufffd" not in head
    assert "\ufffd" not in tail
    assert set(tail.split("]\n", 1)[1]) == {"é"}


def test_single_write_larger_than_the_cap():
    buffer = CappedBuffer(8)
    buffer.write(b"0123456789abcdef")
    assert buffer.text() == "0123\n[... 8 bytes of output dropped ...]\ncdef"


def test_bytes_skipped_at_the_source_end_the_head_and_count_as_dropped():
    buffer = CappedBuffer(100)
    buffer.write(b"head")
    buffer.skip(1000)
    buffer.write(b"tail")
    assert buffer.dropped == 1000
    assert buffer.text() == "head\n[... 1000 bytes of output dropped ...]\ntail"
    assert buffer.read(0, 100) == (b"head", 4, 0)
    assert buffer.read(4, 100) == (b"tail", 1008, 1000)


def test_plain_listener_gets_decoded_text_across_split_characters():
    seen = []
    collector = OutputCollector(1024, lambda chunk: seen.append(chunk.text))
    encoded = "ü".encode()
    collector.feed(Stream.STDOUT, encoded[:1])
    collector.feed(Stream.STDOUT, encoded[1:])
    assert "".join(seen) == "ü"
    assert collector.text(Stream.STDOUT) == "ü"


async def test_slow_async_listener_pauses_the_source_and_gets_everything():
    received = []
    paused = []

    async def slow(chunk):
        await asyncio.sleep(0.001)
        received.append(chunk.data)

    collector = OutputCollector(1024, slow)
    collector.set_flow_control(lambda: paused.append(True), lambda: paused.append(False))
    block = b"x" * 65536
    for _ in range((2 * HIGH_WATER) // len(block)):
        collector.feed(Stream.STDOUT, block)
    assert paused == [True]
    await collector.flush()
    assert b"".join(received) == block * ((2 * HIGH_WATER) // len(block))
    assert paused == [True, False]
    assert collector.truncated


async def test_listener_exception_surfaces_on_flush():
    async def broken(chunk):
        raise RuntimeError("listener failed")

    collector = OutputCollector(1024, broken)
    collector.feed(Stream.STDERR, b"x")
    with pytest.raises(RuntimeError, match="listener failed"):
        await collector.flush()


async def test_a_slow_listener_gets_queued_pieces_joined_in_order():
    """A busy pipe delivers output in many small pieces; a slow listener must pay per batch,
    not per piece, or a timed-out command's call would wait on its listener for minutes."""
    seen: list[OutputChunk] = []

    async def slow(chunk: OutputChunk) -> None:
        await asyncio.sleep(0.01)
        seen.append(chunk)

    collector = OutputCollector(1 << 20, slow)
    pieces = [
        (Stream.STDOUT if i % 100 < 60 else Stream.STDERR, f"{i:05d}\n".encode())
        for i in range(1000)
    ]
    for stream, data in pieces:
        collector.feed(stream, data)
    await collector.flush()
    assert len(seen) < 40
    for stream in Stream:
        expected = b"".join(data for s, data in pieces if s is stream)
        assert b"".join(c.data for c in seen if c.stream is stream) == expected
        assert "".join(c.text for c in seen if c.stream is stream) == expected.decode()
    order = [(c.stream, c.data[:6]) for c in seen]
    assert order == sorted(order, key=lambda item: int(item[1][:5]))
