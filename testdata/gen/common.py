"""Helpers shared by the fixture generators: a safetensors writer/reader
(Debian ships no safetensors package) and a JSON writer whose output keeps
short lists on one line.
"""
import json
import struct

import torch

_DTYPES = {torch.float64: "F64", torch.uint8: "U8"}
_TORCH = {"F64": torch.float64, "U8": torch.uint8, "F32": torch.float32, "I64": torch.int64}


def write_safetensors(path, tensors):
    """Write (name, tensor) pairs, in the given order, as a safetensors file:
    8-byte little-endian header length N, a JSON header padded with spaces so
    that 8+N is a multiple of 8, then the tensor bytes back to back (row-major,
    little-endian). Only float64 and uint8 tensors are accepted."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        if name in header:
            raise KeyError(f"duplicate tensor {name}")
        t = t.detach().contiguous().cpu()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: dtype {t.dtype}")
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Read a safetensors file into {name: tensor} (insertion order kept)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        dt = _TORCH[e["dtype"]]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=dt) if hi > lo else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def _dump(v, indent, level):
    """json.dumps with indentation for objects and lists of objects, and
    lists of scalars (or nested scalar lists) kept on one line."""
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {_dump(x, indent, level + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(v, list) and any(isinstance(x, dict) for x in v):
        items = [pad + _dump(x, indent, level + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(v, allow_nan=False)


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(_dump(obj, 1, 0) + "\n")


def max_abs(a, b):
    """Max |a-b| over all entries, as a Python float (0 for empty tensors)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return float((a - b).abs().max()) if a.numel() else 0.0
