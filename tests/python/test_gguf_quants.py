"""export.py's GGUF dequantizers against gguf-py's own (gguf.quants.dequantize), value
for value: random bytes (every bit pattern a block can hold, float16 scales included)
and blocks that gguf-py's quantizer made from random weights."""
import gguf  # tools/requirements.txt pins it (0.19)
import numpy as np
import pytest

import export as ex


@pytest.mark.parametrize("ggml_type", sorted(ex.GGUF_QUANTS), ids=lambda t: ex.GGUF_QUANTS[t][0])
def test_dequantize_identical_to_gguf_py(ggml_type):
    name, per_block, block_bytes, dequantize = ex.GGUF_QUANTS[ggml_type]
    qtype = gguf.GGMLQuantizationType(ggml_type)
    assert qtype.name == name and gguf.GGML_QUANT_SIZES[qtype] == (per_block, block_bytes)
    np.seterr(invalid="ignore", over="ignore")  # random float16 scales include inf and NaN
    raw = np.random.default_rng(ggml_type).integers(0, 256, (4096, block_bytes), dtype=np.uint8)
    # float16 fields holding inf/NaN give inf/NaN in both; compare them as bit patterns
    ours = dequantize(raw).reshape(-1)
    theirs = gguf.quants.dequantize(raw.reshape(-1), qtype).reshape(-1)
    assert ours.dtype == theirs.dtype == np.float32
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    try:  # gguf-py quantizes only some types; where it can, check real blocks too
        w = np.random.default_rng(1).standard_normal((64, 2 * per_block)).astype(np.float32)
        blocks = gguf.quants.quantize(w, qtype)
    except NotImplementedError:
        return
    ours = dequantize(blocks.reshape(-1, block_bytes)).reshape(w.shape)
    assert np.array_equal(ours, gguf.quants.dequantize(blocks, qtype))
