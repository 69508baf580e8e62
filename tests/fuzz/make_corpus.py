#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpus of fuzz_apply.c into tests/fuzz/corpus/ (run: python3 make_corpus.py).

Each seed spells out the bytes fuzz_apply.c carves, in its order; the comments name the choice each byte makes.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def rope(hd, rd, interleaved=False, base=0, scale=0, max_pos=64, inv_freq=None, flags=0):
    """head_dim and rotary_dim selector bytes for valid even sizes up to 64; max_pos 0 is table-free."""
    b = [hd // 2 - 1, rd // 2 - 1, flags | (1 if interleaved else 0) | (0x20 if inv_freq else 0), base, scale]
    if inv_freq:
        b += inv_freq
    mp = {0: 0, 1000: 254, 4096: 255}.get(max_pos, 64 + (max_pos - 1) % 64 if max_pos <= 64 else None)
    return b + [mp]


def shape(batch, seq, hq, hk, dq, dk, threads=0, tame=1):
    """dtype 0 f32, 1 f16, 2 bf16; seq 100 is byte 252; threads 0 is ctx NULL, else 1..4."""
    seq_b = 252 if seq == 100 else seq - 1
    ctx = 0 if threads == 0 else 3 + ((threads - 1 - 3) % 4)
    return [batch - 1, seq_b, hq - 1, hk, dq, dk, ctx, tame]


def desc(inverse=False, packed=None, null=None):
    b = [0, 1 if inverse else 0, 250 + null if null is not None else 0]
    if packed is not None:
        b.append(224 if packed else 0)
    return b


def strides(layout=0, in_place=False, extra=()):
    """layout: 0 BSHD, 1 BHSD, 160+ random (12 extra bytes), 224+ colliding (1), 240+ huge (1)."""
    return [layout, 0 if in_place else 7] + list(extra)


def place(q_out=0, k_in=0, k_out=0):
    return [0, q_out, k_in, k_out]


def positions(mode, values=(), arena=0):
    return [mode] + list(values) + [arena]


SEEDS = {
    "prefill_f32_half": rope(64, 64) + shape(2, 8, 4, 2, 0, 0) + desc(packed=False) + strides() + strides()
    + place() + positions(0, [10]),
    "decode_bf16_interleaved_ids64_in_place": rope(32, 16, True, max_pos=0) + shape(4, 1, 4, 2, 2, 2, threads=4)
    + desc(packed=False) + strides(in_place=True) + strides(in_place=True) + place() + positions(3, [5, 77, 200, 9]),
    "f16_bhsd_offsets_inverse": rope(48, 48, max_pos=64) + shape(3, 5, 2, 1, 1, 1, threads=2)
    + desc(inverse=True, packed=False) + strides(1) + strides(1) + place() + positions(1, [0, 20, 59]),
    "cos_sin_rows_f32_interleaved": rope(16, 16, True) + shape(2, 3, 2, 2, 0, 0) + desc(packed=False)
    + strides() + strides() + place() + positions(4, [202]),
    "packed_qkv_in_place_f32": rope(64, 64) + shape(2, 6, 4, 2, 0, 0, threads=3) + desc(packed=True)
    + strides(in_place=True) + strides() + [0, 0] + positions(0, [3]),
    "packed_qkv_out_of_place_bf16": rope(32, 32, True) + shape(1, 7, 3, 1, 2, 2) + desc(packed=True)
    + strides() + strides() + [0, 0] + positions(2, [1, 2, 3, 4, 5, 6, 7]),
    "big_seq100_four_threads": rope(64, 64, max_pos=0) + shape(2, 100, 4, 2, 0, 0, threads=4) + desc(packed=False)
    + strides() + strides() + place() + positions(0, [100]),
    "random_strides": rope(16, 8) + shape(2, 3, 2, 2, 0, 1) + desc(packed=False)
    + strides(170, extra=[2, 3, 8, 3, 1, 3, 0x90, 3, 3, 3, 1, 3]) + strides() + place() + positions(0, [1]),
    "bad_id_equal_to_table_size": rope(8, 8, max_pos=16) + shape(1, 4, 1, 0, 0, 0) + desc()
    + strides() + strides() + place() + positions(2, [1, 2, 3, 233]),
    "bad_q_out_overlaps_q_in": rope(8, 8) + shape(2, 2, 2, 0, 0, 0) + desc() + strides() + strides()
    + place(q_out=205) + positions(0, [0]),
    "bad_k_out_overlaps_q_out": rope(16, 16) + shape(2, 3, 2, 2, 0, 0) + desc(packed=False) + strides() + strides()
    + place(q_out=3, k_out=204) + positions(0, [1]),
    "bad_k_in_overlaps_q_out": rope(16, 8, True) + shape(1, 4, 2, 1, 2, 2) + desc(packed=False) + strides()
    + strides() + place(k_in=190) + positions(0, [2]),
    "bad_colliding_out_stride": rope(16, 16) + shape(2, 4, 3, 1, 0, 0) + desc(packed=False)
    + strides(230, extra=[4]) + strides() + place() + positions(0, [0]),
    "bad_huge_stride": rope(16, 16) + shape(3, 4, 2, 1, 0, 2) + desc(packed=False)
    + strides(245, extra=[0x08]) + strides() + place() + positions(0, [0]),
    # extents exactly at the edges of int64 (validate.c once overflowed its own checks there): f16 q.stride_batch
    # -2^62 (INT64_MIN bytes), f32 q.out_stride_seq -2^61, f16 q.stride_seq INT64_MAX - (hd - 1) (last index
    # INT64_MAX), q.out_stride_head INT64_MAX - 1
    "bad_extent_int64_min_bytes_f16": rope(16, 16) + shape(2, 1, 1, 0, 1, 0) + desc()
    + strides(245, extra=[96]) + strides() + place() + positions(0, [0]),
    "bad_extent_int64_min_bytes_f32_out": rope(16, 16) + shape(1, 2, 1, 0, 0, 0) + desc()
    + strides(245, extra=[121]) + strides() + place() + positions(0, [0]),
    "bad_extent_last_index_int64_max": rope(16, 16) + shape(1, 2, 1, 0, 1, 0) + desc()
    + strides(245, extra=[145]) + strides() + place() + positions(0, [0]),
    "bad_extent_head_stride_int64_max_minus_1": rope(16, 16) + shape(1, 1, 2, 0, 0, 0) + desc()
    + strides(245, extra=[137]) + strides() + place() + positions(0, [0]),
    "bad_rotary_dim_odd": [7, 226, 0, 0, 0, 70],
    "bad_offset_int64_max": rope(8, 8, max_pos=0) + shape(1, 3, 1, 1, 0, 0) + desc(packed=False)
    + strides() + strides() + place() + positions(0, [235]),
    "bad_dtype_and_mode": rope(8, 8) + shape(1, 2, 1, 1, 245, 0) + desc(packed=False) + strides() + strides()
    + place() + positions(246, []),
    "bad_ids_inside_q_out": rope(8, 8) + shape(1, 4, 2, 0, 0, 0) + desc() + strides() + strides() + place()
    + positions(3, [1, 2, 3, 4], arena=225),
    "wide_head_dim_65536": [252, 227, 0, 0, 0, 0] + [0, 1, 1, 0, 0, 0, 0, 1] + desc() + strides() + strides()
    + place() + positions(0, [7]),
    "inv_freq_scaling_f16_inverse": rope(8, 8, base=0, scale=1, inv_freq=[10, 20, 30, 40], max_pos=32)
    + shape(2, 4, 2, 2, 1, 1) + desc(inverse=True, packed=False) + strides() + strides() + place()
    + positions(0, [4]),
}


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert all(0 <= b < 256 for b in data), name
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
