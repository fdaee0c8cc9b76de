from __future__ import annotations

import zlib

import pytest

from agent_persist import PayloadCodec, ZlibCodec, register_codec
from agent_persist.codecs import MAX_DECODED_SIZE
from agent_persist.errors import CodecError, InvalidPayloadError


class Reverse:
    name = "reverse"

    def encode(self, data: bytes) -> bytes:
        return data[::-1]

    def decode(self, data: bytes) -> bytes:
        return data[::-1]


def test_plain_json_is_framed_and_readable() -> None:
    codec = PayloadCodec()
    sealed = codec.seal({"b": 1, "a": 2})
    assert sealed == b'json:{"a":2,"b":1}'
    assert codec.unseal(sealed) == b'{"a":2,"b":1}'


def test_a_chain_is_undone_in_reverse_by_any_reader() -> None:
    writer = PayloadCodec([ZlibCodec(), Reverse()])
    sealed = writer.seal({"text": "x" * 1000})
    assert sealed.startswith(b"json+zlib+reverse:")
    assert len(sealed) < 100
    assert PayloadCodec().unseal(sealed) == b'{"text":"' + b"x" * 1000 + b'"}'


@pytest.mark.parametrize(
    ("sealed", "message"),
    [
        (b"no frame at all", "no codec frame"),
        (b"yaml:{}", "no codec frame"),
        (b"json+unknown:{}", "'unknown', which is not registered"),
        (b"json+zlib:not zlib", "cannot decode"),
    ],
)
def test_unreadable_frames_raise_codec_error(sealed: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        PayloadCodec().unseal(sealed, where="row 7")


def test_codec_names_are_checked() -> None:
    bad = Reverse()
    bad.name = "a:b"
    with pytest.raises(ValueError, match="invalid codec name"):
        register_codec(bad)


def test_decompression_is_bounded_and_checked() -> None:
    small = ZlibCodec(max_decoded_size=1000)
    codec = PayloadCodec([small])
    assert codec.unseal(codec.seal("x" * 900)) == ('"' + "x" * 900 + '"').encode()
    bomb = b"json+zlib:" + zlib.compress(b" " * 100_000)
    with pytest.raises(CodecError, match="more than 1000 bytes"):
        codec.unseal(bomb)
    with pytest.raises(CodecError, match="truncated"):
        codec.unseal(b"json+zlib:" + zlib.compress(b"[1, 2, 3]")[:-4])
    with pytest.raises(InvalidPayloadError, match="zlib"):
        codec.seal("x" * 1000)
    with pytest.raises(ValueError, match="max_decoded_size"):
        ZlibCodec(max_decoded_size=0)
    register_codec(ZlibCodec())  # readers in later tests use the default limit again
    assert ZlibCodec().max_decoded_size == MAX_DECODED_SIZE == 64 * 2**20
