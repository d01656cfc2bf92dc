"""The named overwrite methods and the content their passes write."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.errors import UsageError
from agent.records import Category
from agent.sanitize.blockio import AlignedBuffer
from agent.sanitize.methods import METHODS, RandomStream, describe_methods, get_method


def test_every_named_method_says_what_it_is_its_source_and_status():
    assert set(METHODS) == {"zero", "random", "two-pass", "dod-3pass", "hmg-is5-enhanced"}
    for m in METHODS.values():
        assert m.description and m.source
        assert m.status in {"current", "obsolete"}
        assert m.category is Category.CLEAR
    assert METHODS["dod-3pass"].status == "obsolete"
    assert METHODS["zero"].status == "current"


def test_passes_are_what_each_standard_prescribes():
    labels = {name: [p.label for p in m.passes] for name, m in METHODS.items()}
    assert labels == {
        "zero": ["zero"],
        "random": ["random"],
        "two-pass": ["0x55", "0xaa"],
        "dod-3pass": ["zero", "ones", "random"],
        "hmg-is5-enhanced": ["zero", "ones", "random"],
    }
    assert METHODS["hmg-is5-enhanced"].requires_verification


def test_pattern_method_parses_hex_and_rejects_bad_input():
    m = get_method("pattern:deadbeef")
    assert m.passes[0].pattern == bytes.fromhex("deadbeef")
    assert get_method("pattern:0x5a").passes[0].pattern == b"\x5a"
    with pytest.raises(UsageError, match="not hexadecimal"):
        get_method("pattern:zz")
    with pytest.raises(UsageError, match="pattern length"):
        get_method("pattern:aabbcc")  # 3 bytes do not tile a sector


def test_unknown_method_is_a_one_line_usage_error_listing_the_known_ones():
    with pytest.raises(UsageError) as info:
        get_method("gutmann")
    assert "\n" not in str(info.value) and "zero" in str(info.value)


def test_help_epilog_lists_every_method_with_status():
    text = describe_methods()
    for name in [*METHODS, "pattern:<hex>"]:
        assert name in text
    assert "[obsolete]" in text and "[current]" in text


def test_random_stream_is_aes256_ctr_keystream_from_key_and_nonce():
    key, nonce = bytes(range(32)), bytes(range(16))
    stream = RandomStream(key, nonce)
    expected = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor().update(bytes(1 << 16))
    assert stream.bytes_at(0, 1 << 16) == expected


def test_random_stream_regenerates_any_offset_on_its_own():
    stream = RandomStream()
    whole = stream.bytes_at(0, 1 << 20)
    buf = AlignedBuffer(4096, slack=RandomStream.slack)
    try:
        for offset in (0, 512, 4096, 777 * 512, (1 << 20) - 4096):
            stream.fill(buf, offset, 4096)
            assert bytes(buf.view) == whole[offset : offset + 4096]
    finally:
        buf.close()


def test_random_stream_counter_wraps_at_2_to_the_128():
    stream = RandomStream(bytes(32), b"\xff" * 16)
    # Block 0 uses counter 2^128-1, block 1 wraps to 0: same as a stream starting at 0.
    assert stream.bytes_at(16, 32) == RandomStream(bytes(32), bytes(16)).bytes_at(0, 32)


def test_two_random_passes_never_share_a_key():
    spec = METHODS["random"].passes[0]
    assert spec.source().bytes_at(0, 64) != spec.source().bytes_at(0, 64)
