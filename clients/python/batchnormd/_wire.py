"""The binary forms batchnormd speaks: .npy, .npz and safetensors, with NumPy only."""
import io
import json
import struct

import numpy as np

# safetensors dtype names for the NumPy dtypes that have one.
_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}
_NP_TO_ST = {np.dtype(v).str.lstrip("<|"): k for k, v in _ST_DTYPES.items()}


def npy_bytes(x):
    """x as a .npy file: float16/32/64 kept (the server rounds to float32), anything else float32."""
    a = np.asarray(x)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (2, 4, 8):
        a = a.astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_load(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


def npz_load(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _raw(value):
    """(safetensors dtype, shape, little-endian bytes) of a NumPy array or a torch tensor."""
    if hasattr(value, "detach"):  # a torch tensor
        t = value.detach().cpu().contiguous()
        if str(t.dtype) == "torch.bfloat16":
            import torch
            return "BF16", list(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes()
        value = t.numpy()
    a = np.ascontiguousarray(np.asarray(value))
    key = a.dtype.str.lstrip("<>|=")
    if key not in _NP_TO_ST:
        raise TypeError("cannot send dtype %s in safetensors" % a.dtype)
    st = _NP_TO_ST[key]
    return st, list(a.shape), a.astype(_ST_DTYPES[st]).tobytes()


def safetensors_bytes(tensors, metadata=None):
    """A safetensors file of {name: array or tensor}, in the dict's order."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        dtype, shape, data = _raw(value)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors_load(data):
    """({name: NumPy array}, metadata) from a safetensors file (F32 and I64, as the server writes, and the rest)."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: %d bytes" % len(data))
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if info["dtype"] not in _ST_DTYPES:
            raise ValueError("%s: dtype %s is not readable here" % (name, info["dtype"]))
        a = np.frombuffer(body[begin:end], dtype=_ST_DTYPES[info["dtype"]])
        out[name] = a.reshape(info["shape"]).copy()
    return out, metadata
