"""Row ids: a fast, platform-independent 64-bit string hash; duplicate checks; content ids.

A row without an id in its file gets a *content id* hashed from what it is (name, place,
kind), so that importing the same rows again gives the same ids, and the enforcement cases
tied to them carry over.  The hash is part of the stored data's meaning: never change it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from layers import schema as sch
from layers.cells import as_arrow


def duplicated(values: pd.Series) -> np.ndarray:
    """True for every non-missing string that occurs more than once (``duplicated(keep=False)``).

    Fast for the usual case of unique ids: only values whose :func:`stable_hash` repeats are
    compared exactly.
    """
    values = pd.Series(values).reset_index(drop=True)
    present = np.flatnonzero(values.notna().to_numpy())
    hashes = stable_hash(values.array)[present]
    out = np.zeros(len(values), dtype=bool)
    if _all_different(hashes):  # the usual case ends here
        return out
    suspects = present[pd.Series(hashes).duplicated(keep=False).to_numpy()]
    out[suspects[values.iloc[suspects].duplicated(keep=False).to_numpy()]] = True
    return out


def _all_different(hashes: np.ndarray) -> bool:
    """Whether no value repeats (sorting integers beats pandas' hash table about threefold)."""
    ordered = np.sort(hashes)
    return not (ordered[1:] == ordered[:-1]).any()


#: two lower-case hex digits of each byte value, as they lie in memory
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), dtype=np.uint16)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (uint64 arithmetic wraps)."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def stable_hash(values: object) -> np.ndarray:
    """A 64-bit hash of each string or bytes value (missing = empty), the same on every platform.

    Vectorised: the UTF-8 bytes are read 8 at a time (little-endian words, the last one
    zero-padded) and folded with the splitmix64 finaliser, seeded with the length.
    """
    arr = pc.fill_null(as_arrow(values).cast(pa.large_binary()), b"")
    if isinstance(arr, pa.ChunkedArray):  # each chunk on its own: no copy into one buffer
        return np.concatenate([_hash_array(c) for c in arr.chunks] or [np.zeros(0, dtype=np.uint64)])
    return _hash_array(arr)


def _hash_array(arr: pa.Array) -> np.ndarray:
    """:func:`stable_hash` of one contiguous ``large_binary`` array without nulls."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    body = arr.buffers()[2]
    data = np.zeros(offsets[-1] + 8, dtype=np.uint8)
    if body is not None and offsets[-1] > 0:
        data[: offsets[-1]] = np.frombuffer(body, dtype=np.uint8)[: offsets[-1]]
    words = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    starts, lens = offsets[:-1], np.diff(offsets)
    h = _mix(lens.astype(np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))
    active = np.flatnonzero(lens > 0)
    k = 0
    while len(active):
        at: slice | np.ndarray = slice(None) if len(active) == len(lens) else active  # a slice is cheaper
        left = lens[at] - 8 * k
        word = words[starts[at] + 8 * k]
        if left.min() < 8:  # some values end inside this word: keep only their bytes
            shift = (np.uint64(8) * np.minimum(left, 8).astype(np.uint64)) % np.uint64(64)
            word &= np.where(left >= 8, ~np.uint64(0), (np.uint64(1) << shift) - np.uint64(1))
        h[at] = _mix(h[at] ^ word)
        k += 1
        active = active[left > 8]
    return h


def content_ids(
    schema: sch.LayerSchema, names: object, lon: np.ndarray, lat: np.ndarray, wkb: np.ndarray | None
) -> pd.arrays.ArrowStringArray:
    """``{id_prefix}-{12 hex digits}`` of the row content; ``-2``, ``-3`` … for repeats, in file order.

    The hash (:func:`stable_hash`) covers the lower-cased name, the WGS84 coordinates in
    millionths of a degree (the point, or the lower-left corner), the WKB of other geometries
    rounded to 1e-6°, and the kind, so that re-importing the same rows gives the same ids.
    """
    n = len(lon)
    h = stable_hash(pc.utf8_lower(as_arrow(pd.array(names, dtype="str"))))
    for coord in (lon, lat):
        h = _mix(h ^ np.round(np.nan_to_num(coord) * 1e6).astype(np.int64).view(np.uint64))
    if wkb is not None:
        h = _mix(h ^ stable_hash(wkb))
    h = _mix(h ^ stable_hash([schema.kind])[0])
    prefix = np.frombuffer(f"{schema.id_prefix}-".encode(), dtype=np.uint8)
    chars = np.empty((n, len(prefix) + 12), dtype=np.uint8)
    chars[:, : len(prefix)] = prefix
    top = (h >> np.uint64(16)).astype(">u8").view(np.uint8).reshape(n, 8)[:, 2:]  # the high 48 bits
    chars[:, len(prefix) :] = _HEX_PAIRS[top].view(np.uint8).reshape(n, 12)
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int64) * chars.shape[1])
    arrow = pa.Array.from_buffers(pa.large_string(), n, [None, offsets, pa.py_buffer(chars)])
    made = pd.Series(pd.array(arrow, dtype="str"))
    if _all_different(h):
        return made.array
    repeat = np.flatnonzero(pd.Series(h).duplicated().to_numpy())
    if len(repeat):
        rank = pd.Series(h[repeat]).groupby(h[repeat]).cumcount().to_numpy() + 2
        made.iloc[repeat] = [f"{made.iat[p]}-{r}" for p, r in zip(repeat, rank, strict=True)]
    return made.array
