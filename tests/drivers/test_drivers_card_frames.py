"""Card reader framing and id-tag formats, without ports: literal datasheet frames as oracles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid import pn532, rdm6300
from drivers.rfid.id_tags import format_id_tag
from drivers.rfid.line import LineDecoder, parse_id
from drivers.rfid.reader import RepeatFilter
from drivers.rfid.state import FrameCounters

# The example from RDM6300 documentation: card 62E3086CED, checksum 08.
RDM_FRAME = b"\x0262E3086CED08\x03"
RDM_UID = bytes.fromhex("62E3086CED")


def test_rdm6300_literal_frame() -> None:
    assert rdm6300.encode_frame(RDM_UID) == RDM_FRAME
    counters = FrameCounters()
    assert rdm6300.Rdm6300Decoder(counters).feed(RDM_FRAME) == [RDM_UID]
    assert counters == FrameCounters()


@pytest.mark.parametrize(
    ("stream", "uids", "bad", "noise"),
    [
        (b"\x0262E3086CED09\x03", 0, 1, 0),  # checksum off by one
        (b"\x0262E3086CED08\x04", 0, 1, 0),  # wrong ETX
        (b"\x0262E3086CGD08\x03", 0, 1, 0),  # not hex
        (b"\x0262E30" + RDM_FRAME, 1, 1, 0),  # cut-off frame, then a good one
        (b"hello" + RDM_FRAME + b"\xfe\xfd", 1, 0, 7),  # noise around a good frame
        (RDM_FRAME[:9], 0, 0, 0),  # incomplete: waits for more, counts nothing yet
    ],
)
def test_rdm6300_rejects_and_counts(stream: bytes, uids: int, bad: int, noise: int) -> None:
    counters = FrameCounters()
    assert rdm6300.Rdm6300Decoder(counters).feed(stream) == [RDM_UID] * uids
    assert (counters.bad_frames, counters.noise_bytes) == (bad, noise)


@given(
    st.lists(st.binary(min_size=5, max_size=5), min_size=1, max_size=8),
    st.lists(st.integers(1, 20), min_size=1, max_size=30),
)
def test_rdm6300_chunking_does_not_matter(uids: list[bytes], cuts: list[int]) -> None:
    """The port delivers arbitrary slices; the decoded ids must not depend on them."""
    stream = b"".join(rdm6300.encode_frame(u) for u in uids)
    decoder = rdm6300.Rdm6300Decoder(FrameCounters())
    got: list[bytes] = []
    pos = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        got += decoder.feed(stream[pos : pos + cut])
        pos += cut
    got += decoder.feed(stream[pos:])
    assert got == uids


def test_line_decoder_hex_and_decimal() -> None:
    counters = FrameCounters()
    hex_decoder = LineDecoder("hex", counters)
    assert hex_decoder.feed(b"04A2B3C4\r\n04a2b3c4d5e680\n") == [bytes.fromhex("04A2B3C4"), bytes.fromhex("04A2B3C4D5E680")]
    assert hex_decoder.feed(b"ABC") == [] and hex_decoder.feed(b"\r") == [bytes.fromhex("0ABC")]
    assert hex_decoder.feed(b"XYZ!\r\n\r\n") == [] and counters.bad_frames == 1
    dec = LineDecoder("decimal", counters)
    assert dec.feed(b"0012345678\r\n") == [(12345678).to_bytes(4, "big")]
    assert dec.feed(b"12AB\r\n") == [] and counters.bad_frames == 2
    assert dec.feed(b"9" * 40) == [] and counters.noise_bytes == 33  # runaway line dropped
    assert parse_id("0012345678", "decimal") == bytes.fromhex("00BC614E")


# SAMConfiguration(normal, timeout 0x14, IRQ) as printed in the PN532 user manual.
SAM_FRAME = bytes.fromhex("0000ff05fbd4140114010200")


def test_pn532_literal_frames() -> None:
    assert pn532.command(pn532.SAM_CONFIGURATION, pn532.SAM_NORMAL) == SAM_FRAME
    counters = FrameCounters()
    frames = pn532.FrameDecoder(counters).feed(pn532.ACK + bytes.fromhex("0000ff02fed5151600"))
    assert frames == [pn532.Frame("ack"), pn532.Frame("data", 0xD5, b"\x15")]
    assert counters == FrameCounters()


def test_pn532_bad_checksums_and_noise_are_counted() -> None:
    counters = FrameCounters()
    decoder = pn532.FrameDecoder(counters)
    good = pn532.encode_frame(0xD5, b"\x4b\x00")
    bad_dcs = good[:-2] + bytes([good[-2] ^ 1]) + good[-1:]
    bad_lcs = good[:4] + bytes([good[4] ^ 1]) + good[5:]
    assert decoder.feed(b"\x13\x37" + bad_dcs + bad_lcs + good) == [pn532.Frame("data", 0xD5, b"\x4b\x00")]
    assert counters.bad_frames == 2 and counters.noise_bytes >= 2
    # split anywhere
    for cut in range(len(good)):
        d = pn532.FrameDecoder(FrameCounters())
        assert d.feed(good[:cut]) + d.feed(good[cut:]) == [pn532.Frame("data", 0xD5, b"\x4b\x00")]


def test_pn532_target_parsing() -> None:
    uid = bytes.fromhex("04A2B3C4D5E680")
    assert pn532.target_uid(bytes([0x4B, 1, 1, 0x00, 0x44, 0x00, 7]) + uid) == uid
    assert pn532.target_uid(b"\x4b\x00") is None
    with pytest.raises(ValueError):
        pn532.target_uid(bytes([0x4B, 1, 1, 0x00, 0x44, 0x00, 7]) + uid[:3])


@pytest.mark.parametrize(
    ("uid", "fmt", "reverse", "tag"),
    [
        ("04A2B3C4D5E680", "hex", False, "04A2B3C4D5E680"),
        ("04A2B3C4D5E680", "hex-last4", False, "C4D5E680"),
        ("04A2B3C4D5E680", "dec10", False, "3302352512"),
        ("04A2B3C4D5E680", "hex", True, "80E6D5C4B3A204"),
        ("04A2B3C4D5E680", "hex-last4", True, "80E6D5C4"),
        ("62E3086CED", "dec10", False, "3808980205"),  # the number printed on the EM4100 fob
        ("DEADBEEF", "dec10", True, "4022250974"),  # LSB-first Wiegand-32 style
        ("01", "dec10", False, "0000000001"),
    ],
)
def test_id_tag_formats(uid: str, fmt: str, reverse: bool, tag: str) -> None:
    assert format_id_tag(bytes.fromhex(uid), fmt, reverse) == tag  # type: ignore[arg-type]


def test_repeat_filter_window_runs_from_last_sighting() -> None:
    f = RepeatFilter(2.0)
    a, b = b"\x01", b"\x02"
    assert f.is_new(a, 0.0)
    assert not f.is_new(a, 1.5)
    assert not f.is_new(a, 3.0)  # still held: 1.5 s since last seen
    assert f.is_new(b, 3.1)  # another card counts at once
    assert f.is_new(a, 3.2)
    assert f.is_new(a, 5.3)  # absent for more than the window
