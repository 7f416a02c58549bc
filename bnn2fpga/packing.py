"""Bit packing: the one definition shared by the reference, the writers and the tests.

Convention: element i of a group is bit i of the packed word (LSB first).  For bipolar
values bit 1 = +1 and bit 0 = -1; for unipolar values bit 1 = +1 and bit 0 = 0.  A packed
row written as an integer literal (hex in design.json, ``ap_uint`` in C++, ``'h`` in
SystemVerilog) therefore has element 0 in its least significant bit.
"""

from __future__ import annotations

import numpy as np

WORD = 64
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def bipolar_to_bits(x: np.ndarray) -> np.ndarray:
    """{-1,+1} -> {0,1} (uint8)."""
    return (np.asarray(x) > 0).astype(np.uint8)


def bits_to_bipolar(b: np.ndarray) -> np.ndarray:
    """{0,1} -> {-1,+1} (int8)."""
    return (2 * np.asarray(b, dtype=np.int8) - 1).astype(np.int8)


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Pack the last axis of a 0/1 array into uint64 words (bit i of word w = element 64w+i).

    Lanes past the end are 0; callers mask them (see ``lane_mask``)."""
    bits = np.asarray(bits, dtype=np.uint8)
    n = bits.shape[-1]
    nwords = max(1, -(-n // WORD))
    padded = np.zeros(bits.shape[:-1] + (nwords * WORD,), dtype=np.uint8)
    padded[..., :n] = bits
    as_bytes = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u8").reshape(bits.shape[:-1] + (nwords,))


def lane_mask(n: int) -> np.ndarray:
    """uint64 words with exactly the first n lanes set."""
    return pack_words(np.ones(n, dtype=np.uint8))


def popcount(words: np.ndarray) -> np.ndarray:
    """Per-word population count of a uint64 array (SWAR, exact)."""
    x = np.asarray(words, dtype=np.uint64)
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(np.int64)


def bits_to_int(bits: np.ndarray) -> int:
    """A 0/1 vector as one integer, element i at bit i."""
    value = 0
    for i, b in enumerate(np.asarray(bits).reshape(-1)):
        if b:
            value |= 1 << i
    return value


def int_to_bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> i) & 1 for i in range(n)], dtype=np.uint8)


def pack_bits_hex(bits: np.ndarray) -> str:
    """A 0/1 vector as a hex literal (no prefix), element 0 in the least significant bit."""
    n = int(np.asarray(bits).size)
    return format(bits_to_int(bits), f"0{max(1, -(-n // 4))}x")


def unpack_bits_hex(text: str, n: int) -> np.ndarray:
    return int_to_bits(int(text, 16), n)


def codes_to_int(codes: np.ndarray, bits: int) -> int:
    """Multi-bit codes packed into one integer: element i occupies bits [i*bits, (i+1)*bits)."""
    value = 0
    mask = (1 << bits) - 1
    for i, c in enumerate(np.asarray(codes).reshape(-1)):
        value |= (int(c) & mask) << (i * bits)
    return value


def weight_memory(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """FINN-style weight layout: bits of shape (PE, NF*SF, SIMD).

    Output row r goes to PE r % PE at neuron fold r // PE; word index = nf * SF + sf holds
    fan-in elements [sf*SIMD, (sf+1)*SIMD) of that row (bit 1 = +1)."""
    out_ch, fan_in = weights.shape
    nf, sf = out_ch // pe, fan_in // simd
    bits = bipolar_to_bits(weights).reshape(nf, pe, sf, simd)
    return bits.transpose(1, 0, 2, 3).reshape(pe, nf * sf, simd)


def threshold_memory(thresholds: np.ndarray, pe: int) -> np.ndarray:
    """Thresholds of shape (PE, NF, n): channel c goes to PE c % PE at fold c // PE."""
    out_ch, n = thresholds.shape
    return thresholds.reshape(out_ch // pe, pe, n).transpose(1, 0, 2)


def pack_beats(codes: np.ndarray, lanes: int, bits: int, tdata_bits: int) -> np.ndarray:
    """Stream beats of a sequence of codes: ``lanes`` elements of ``bits`` bits per beat
    (element i at bits [i*bits, (i+1)*bits), two's complement for negative codes), each beat
    padded to ``tdata_bits`` and returned as uint32 words (N_beats, ceil(tdata_bits/32)),
    word 0 = bits 31:0.  ``codes`` is flattened in C order (frames channels-last)."""
    flat = np.asarray(codes, dtype=np.int64).reshape(-1)
    if flat.size % lanes:
        raise ValueError(f"{flat.size} codes do not fill whole beats of {lanes} lanes")
    beats = flat.size // lanes
    words = max(1, -(-tdata_bits // 32))
    vals = flat & ((1 << bits) - 1)
    planes = ((vals[:, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8)
    padded = np.zeros((beats, words * 32), dtype=np.uint8)
    padded[:, :lanes * bits] = planes.reshape(beats, lanes * bits)
    return np.packbits(padded, axis=1, bitorder="little").view("<u4").reshape(beats, words)


def unpack_beats(words: np.ndarray, lanes: int, bits: int, signed: bool = False
                 ) -> np.ndarray:
    """Inverse of ``pack_beats``: uint32 words (N_beats, W) -> codes (N_beats * lanes,)."""
    w = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
    beats = w.shape[0]
    allbits = np.unpackbits(w.view(np.uint8).reshape(beats, -1), axis=1, bitorder="little")
    planes = allbits[:, :lanes * bits].reshape(beats * lanes, bits).astype(np.int64)
    vals = (planes << np.arange(bits, dtype=np.int64)).sum(axis=1)
    if signed:
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals


def int_weight_memory(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """Integer weight codes (a multi-bit MVTU) in ``weight_memory``'s layout: (PE, NF*SF,
    SIMD) codes; a word is packed with ``pack_fields`` (lane i at bits [i*WB, (i+1)*WB),
    two's complement)."""
    out_ch, fan_in = weights.shape
    nf, sf = out_ch // pe, fan_in // simd
    codes = np.asarray(weights, np.int64).reshape(nf, pe, sf, simd)
    return codes.transpose(1, 0, 2, 3).reshape(pe, nf * sf, simd)


def channel_memory(table: np.ndarray, pe: int) -> np.ndarray:
    """Per-channel constants (C, K) folded PE-wise: (PE, NF, K), channel nf*PE + pe at
    [pe][nf] (the layout of ``threshold_memory``, for any per-channel table)."""
    table = np.asarray(table, np.int64)
    c = table.shape[0]
    return table.reshape(c // pe, pe, -1).transpose(1, 0, 2)


def pack_fields(values: np.ndarray, widths: list[int] | tuple[int, ...] | int) -> int:
    """Signed fields packed LSB first into one integer: field j (two's complement,
    ``widths[j]`` bits, or ``widths`` bits each) at the sum of the widths before it.  The
    one packing of every multi-field ROM word (multi-bit weights, affine constants,
    thresholds with their negate flag), rendered as hex for $readmemh and as an ap_uint
    literal for HLS."""
    vals = [int(v) for v in np.asarray(values).reshape(-1)]
    ws = [int(widths)] * len(vals) if isinstance(widths, int) else [int(w) for w in widths]
    word, pos = 0, 0
    for v, w in zip(vals, ws, strict=True):
        lo, hi = -(1 << (w - 1)), (1 << w) - 1
        if not lo <= v <= hi:
            raise ValueError(f"{v} does not fit a {w}-bit field")
        word |= (v & ((1 << w) - 1)) << pos
        pos += w
    return word
