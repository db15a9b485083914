#!/usr/bin/env python3
"""lamp_to_gguf.py — the weights of a lamp model as a GGUF file llama.cpp reads.

    ~/.cache/lamp/venv/bin/python -m tools.lamp_to_gguf MODEL.lamp OUT.gguf [--type f32|q8_0]

For tools/bench_peers.py: llama.cpp runs the same model as lamp. The float32
weights of MODEL (an int8 lamp file is dequantized first) are written with
gguf-py's GGUFWriter under llama.cpp's names (export.py's GGUF_NAMES, the
table export.py reads GGUF files with); --type q8_0 quantizes the matrices
with gguf-py's own Q8_0 (blocks of 32, float16 scales: llama.cpp's rule, not
lamp's), the norms stay float32 as llama.cpp's converter leaves them. lamp
keeps q and k rows with RoPE's pairs interleaved, the layout GGUF uses, so
they are copied as they are. The tokenizer goes along (tokenizer.ggml.*,
sentencepiece kind only). A benchmark tool: export.py reads GGUF, it does
not write it.
"""
import argparse

import numpy as np

import lampfile
from export import GGUF_NAMES


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a lamp file")
    ap.add_argument("out", help="the .gguf to write")
    ap.add_argument("--type", choices=("f32", "q8_0"), default="f32")
    args = ap.parse_args()
    import gguf

    cfg, tensors, tok = lampfile.read_lamp(args.model)
    if tok.kind != lampfile.TOKENIZER_SENTENCEPIECE:
        raise SystemExit(f"lamp_to_gguf: {args.model}: only sentencepiece tokenizers are written")
    w = gguf.GGUFWriter(args.out, "llama")
    w.add_context_length(cfg["seq_len"])
    w.add_embedding_length(cfg["dim"])
    w.add_block_count(cfg["n_layers"])
    w.add_feed_forward_length(cfg["hidden_dim"])
    w.add_head_count(cfg["n_heads"])
    w.add_head_count_kv(cfg["n_kv_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(float(cfg["rope_theta"]))
    w.add_layer_norm_rms_eps(float(cfg["norm_eps"]))
    w.add_vocab_size(cfg["vocab_size"])
    q8 = args.type == "q8_0"
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if q8 else gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list([p[0] for p in tok.pieces])
    w.add_token_scores([float(p[1]) for p in tok.pieces])
    w.add_token_types([int(p[2]) for p in tok.pieces])
    w.add_bos_token_id(cfg["bos_id"])
    w.add_eos_token_id(cfg["eos_id"])
    w.add_add_bos_token(True)

    def add(name, array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if q8 and array.ndim == 2:   # the matrices; norms stay float32
            w.add_tensor(name, gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, array)

    for key, name in GGUF_NAMES.items():
        if key not in tensors:   # wcls of a shared classifier: llama.cpp then uses token_embd
            continue
        t = tensors[key]
        if "{}" in name:
            for layer in range(cfg["n_layers"]):
                add(name.format(layer), t[layer])
        else:
            add(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}: {args.type}, from {args.model}")


if __name__ == "__main__":
    main()
