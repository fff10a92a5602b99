#!/usr/bin/python3
"""Writes a safetensors file by hand, with only struct and json, following the format's specification
(https://github.com/huggingface/safetensors#format), independently of DisRanker's writer.

Usage: safetensors_reference.py OUT

The file is deliberately unlike what DisRanker writes: the header is indented JSON with a newline and trailing
spaces, the tensors are neither sorted by name nor by alignment, and one tensor is empty. tests/test_safetensors.cc
(SafetensorsFile.ReadsAFileWrittenByAnIndependentPythonWriter) reads it and checks every value.
"""
import json
import struct
import sys

# name, dtype, shape, struct format of one element, values
TENSORS = [
    ("b.f16", "F16", [2, 2], "e", [1.0, -2.5, 65504.0, 2.0 ** -24]),
    ("a.f32", "F32", [3], "f", [0.5, -1.25, 3.0e38]),
    ("c.bf16", "BF16", [2], None, [1.0, -2.5]),  # bf16 is the high half of the float32 bits
    ("d.f64", "F64", [2], "d", [1.0 / 3.0, -1e300]),
    ("e.i64", "I64", [2], "q", [-(2 ** 62), 7]),
    ("f.i32", "I32", [], "i", [-5]),  # a scalar: shape [] holds one element
    ("g.u8", "U8", [3], "B", [0, 128, 255]),
    ("h.bool", "BOOL", [2], "?", [True, False]),
    ("i.i8", "I8", [1, 2], "b", [-128, 127]),
    ("j.i16", "I16", [2], "h", [-32768, 32767]),
    ("k.empty", "F32", [0, 4], "f", []),
    ("l.u64", "U64", [1], "Q", [2 ** 64 - 1]),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    header = {"__metadata__": {"format": "pt", "source": "safetensors_reference.py"}}
    data = b""
    for name, dtype, shape, fmt, values in TENSORS:
        if dtype == "BF16":
            raw = b"".join(struct.pack("<f", v)[2:] for v in values)
        else:
            raw = struct.pack("<" + fmt * len(values), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, indent=1).encode("utf-8") + b"\n     "
    with open(sys.argv[1], "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
