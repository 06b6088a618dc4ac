"""Read a TensorFlow (v1/v2 "tensor bundle") checkpoint without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` (a LevelDB-format sorted table mapping each variable name to a
``BundleEntryProto``: dtype, shape, shard, offset, size) plus ``PREFIX.data-SSSSS-of-NNNNN`` shards of raw
little-endian tensor bytes. Only what the released MSPFN checkpoint needs is supported: uncompressed
tables, unpartitioned numeric tensors. The protobuf messages are decoded by hand (field numbers from
tensorflow/core/protobuf/tensor_bundle.proto).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bench.errors import BadInputError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + crc32c (4 bytes)
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into (field number, value) pairs (varints as int, others as bytes)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, value))
    return out


def _block_entries(data: bytes, offset: int, size: int, path: Path) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one table block (prefix-compressed keys, restart array at the end)."""
    if offset + size + BLOCK_TRAILER_SIZE > len(data):
        raise BadInputError(f"{path}: truncated table block; the file is incomplete, download it again")
    if data[offset + size] != 0:
        raise BadInputError(f"{path}: compressed index blocks are not supported (type {data[offset + size]})")
    block = data[offset : offset + size]
    num_restarts = struct.unpack_from("<I", block, size - 4)[0]
    end = size - 4 * (num_restarts + 1)
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def read_index(index_path: Path) -> tuple[int, dict[str, dict]]:
    """Parse ``PREFIX.index`` -> (number of shards, {name: {dtype, shape, shard, offset, size}})."""
    data = Path(index_path).read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise BadInputError(f"{index_path}: not a TensorFlow checkpoint index (bad table magic); "
                            "point to the .index file of a TF checkpoint")
    footer = data[-FOOTER_SIZE:]
    _, _, pos = _handle(footer)  # metaindex handle (unused)
    index_offset, index_size, _ = _handle(footer, pos)
    num_shards, entries = 1, {}
    for _, handle in _block_entries(data, index_offset, index_size, index_path):
        offset, size, _ = _handle(handle)
        for key, value in _block_entries(data, offset, size, index_path):
            fields = _fields(value)
            if key == b"":  # BundleHeaderProto
                num_shards = next((v for f, v in fields if f == 1), 1)
                continue
            entry = {"dtype": 0, "shape": [], "shard": 0, "offset": 0, "size": 0, "sliced": False}
            for field, v in fields:
                if field == 1:
                    entry["dtype"] = v
                elif field == 2:
                    entry["shape"] = [next((s for g, s in _fields(dim) if g == 1), 0)
                                      for f2, dim in _fields(v) if f2 == 2]
                elif field == 3:
                    entry["shard"] = v
                elif field == 4:
                    entry["offset"] = v
                elif field == 5:
                    entry["size"] = v
                elif field == 7:
                    entry["sliced"] = True
            entries[key.decode("utf-8")] = entry
    return num_shards, entries


def read_tf_checkpoint(prefix: Path | str) -> dict[str, np.ndarray]:
    """All numeric variables of the checkpoint ``prefix`` (the path without ``.index``) as numpy arrays.

    Variables of other types (strings) and partitioned variables are skipped.
    """
    prefix = Path(str(prefix).removesuffix(".index"))
    index_path = Path(f"{prefix}.index")
    if not index_path.is_file():
        raise BadInputError(f"{index_path}: TensorFlow checkpoint index not found; expected {prefix.name}.index "
                            f"beside {prefix.name}.data-00000-of-00001")
    num_shards, entries = read_index(index_path)
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        dtype = DTYPES.get(e["dtype"])
        if dtype is None or e["sliced"]:
            continue
        if e["shard"] not in shards:
            shard_path = Path(f"{prefix}.data-{e['shard']:05d}-of-{num_shards:05d}")
            if not shard_path.is_file():
                raise BadInputError(f"{shard_path}: checkpoint data shard not found; place it beside {index_path.name}")
            shards[e["shard"]] = shard_path.read_bytes()
        raw = shards[e["shard"]][e["offset"] : e["offset"] + e["size"]]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        if len(raw) != count * np.dtype(dtype).itemsize:
            raise BadInputError(f"{prefix}: variable {name} has {len(raw)} bytes, expected "
                                f"{count * np.dtype(dtype).itemsize}; the data file is truncated or does not "
                                f"belong to this index")
        out[name] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(e["shape"]).copy()
    return out
