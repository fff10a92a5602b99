#!/usr/bin/env python3
"""Independent reference for tests/test_bert.cc: Hugging Face BertForSequenceClassification / BertForMaskedLM
math (transformers' modeling_bert.py, eager attention, eval mode) written in plain Python with float64 arithmetic.

No torch, numpy or transformers is needed (none is guaranteed on these machines), so the numbers come from code
that shares nothing with the C++ model but the formulas. The tiny model's weights come from a closed-form
generator (an integer hash), rounded to float32 exactly as the C++ test rounds them.

Run:  /usr/bin/python3 tests/reference/bert_reference.py   (prints the C++ arrays pasted into test_bert.cc)
"""
import math
import struct

VOCAB, HIDDEN, HEADS, LAYERS, INTER, MAX_POS, TYPES, EPS = 20, 8, 2, 2, 16, 16, 2, 1e-12
HEAD_DIM = HIDDEN // HEADS
F32_MIN = -3.4028234663852886e38  # torch.finfo(torch.float32).min, HF's additive mask value


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def tensor_specs():
    """(HF name, shape) in the canonical order the C++ test's generator uses."""
    specs = [
        ("bert.embeddings.word_embeddings.weight", [VOCAB, HIDDEN]),
        ("bert.embeddings.position_embeddings.weight", [MAX_POS, HIDDEN]),
        ("bert.embeddings.token_type_embeddings.weight", [TYPES, HIDDEN]),
        ("bert.embeddings.LayerNorm.weight", [HIDDEN]),
        ("bert.embeddings.LayerNorm.bias", [HIDDEN]),
    ]
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            specs += [(p + m + ".weight", [HIDDEN, HIDDEN]), (p + m + ".bias", [HIDDEN])]
        specs += [(p + "attention.output.LayerNorm.weight", [HIDDEN]), (p + "attention.output.LayerNorm.bias", [HIDDEN])]
        specs += [(p + "intermediate.dense.weight", [INTER, HIDDEN]), (p + "intermediate.dense.bias", [INTER])]
        specs += [(p + "output.dense.weight", [HIDDEN, INTER]), (p + "output.dense.bias", [HIDDEN])]
        specs += [(p + "output.LayerNorm.weight", [HIDDEN]), (p + "output.LayerNorm.bias", [HIDDEN])]
    specs += [
        ("bert.pooler.dense.weight", [HIDDEN, HIDDEN]),
        ("bert.pooler.dense.bias", [HIDDEN]),
        ("classifier.weight", [1, HIDDEN]),
        ("classifier.bias", [1]),
        ("cls.predictions.bias", [VOCAB]),
        ("cls.predictions.transform.dense.weight", [HIDDEN, HIDDEN]),
        ("cls.predictions.transform.dense.bias", [HIDDEN]),
        ("cls.predictions.transform.LayerNorm.weight", [HIDDEN]),
        ("cls.predictions.transform.LayerNorm.bias", [HIDDEN]),
    ]
    return specs


def mix32(x):
    """A 32-bit integer hash (lowbias32): reproducible bit for bit in C++ with uint32_t arithmetic."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def generate(t, name, numel):
    """Element j of the t-th tensor: base + amp * u, u uniform in [-1, 1) from a hash of (t, j); base 1 and amp 0.2
    for LayerNorm weights, base 0 and amp 0.5 otherwise. Computed in double, rounded to float32."""
    base, amp = (1.0, 0.2) if name.endswith("LayerNorm.weight") else (0.0, 0.5)
    return [f32(base + amp * (mix32(t * 1000003 + j) / 4294967296.0 * 2.0 - 1.0)) for j in range(numel)]


def weights():
    w = {}
    for t, (name, shape) in enumerate(tensor_specs()):
        flat = generate(t, name, math.prod(shape))
        w[name] = [flat[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])] if len(shape) == 2 else flat
    return w


def linear(x, w, b):  # x: [in], w: [out][in] (PyTorch layout), b: [out]
    return [sum(wi * xi for wi, xi in zip(row, x)) + bo for row, bo in zip(w, b)]


def layer_norm(x, g, b):
    mean = sum(x) / len(x)
    var = sum((v - mean) ** 2 for v in x) / len(x)  # biased, as torch.nn.LayerNorm
    return [(v - mean) / math.sqrt(var + EPS) * gi + bi for v, gi, bi in zip(x, g, b)]


def gelu(x):  # exact erf GELU (hidden_act "gelu")
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def softmax(xs):
    m = max(xs)
    e = [math.exp(v - m) for v in xs]
    s = sum(e)
    return [v / s for v in e]


def forward(w, ids, types, mask):
    """Returns (hidden states after embeddings and after each layer, pooled, score) for one sequence."""
    T = len(ids)
    h = []
    for pos in range(T):
        e = [a + b + c for a, b, c in zip(w["bert.embeddings.word_embeddings.weight"][ids[pos]],
                                         w["bert.embeddings.position_embeddings.weight"][pos],
                                         w["bert.embeddings.token_type_embeddings.weight"][types[pos]])]
        h.append(layer_norm(e, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"]))
    states = [h]
    additive = [(1.0 - m) * F32_MIN for m in mask]
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        q = [linear(x, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"]) for x in h]
        k = [linear(x, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"]) for x in h]
        v = [linear(x, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"]) for x in h]
        ctx = [[0.0] * HIDDEN for _ in range(T)]
        for hd in range(HEADS):
            sl = slice(hd * HEAD_DIM, (hd + 1) * HEAD_DIM)
            for a in range(T):
                scores = [sum(x * y for x, y in zip(q[a][sl], k[b][sl])) / math.sqrt(HEAD_DIM) + additive[b]
                          for b in range(T)]
                probs = softmax(scores)
                for d in range(HEAD_DIM):
                    ctx[a][hd * HEAD_DIM + d] = sum(probs[b] * v[b][hd * HEAD_DIM + d] for b in range(T))
        attn = []
        for a in range(T):
            o = linear(ctx[a], w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            attn.append(layer_norm([x + y for x, y in zip(o, h[a])], w[p + "attention.output.LayerNorm.weight"],
                                   w[p + "attention.output.LayerNorm.bias"]))
        out = []
        for a in range(T):
            inter = [gelu(x) for x in linear(attn[a], w[p + "intermediate.dense.weight"],
                                             w[p + "intermediate.dense.bias"])]
            o = linear(inter, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            out.append(layer_norm([x + y for x, y in zip(o, attn[a])], w[p + "output.LayerNorm.weight"],
                                  w[p + "output.LayerNorm.bias"]))
        h = out
        states.append(h)
    pooled = [math.tanh(x) for x in linear(h[0], w["bert.pooler.dense.weight"], w["bert.pooler.dense.bias"])]
    score = linear(pooled, w["classifier.weight"], w["classifier.bias"])[0]
    return states, pooled, score


def mlm_logits(w, x):
    t = [gelu(v) for v in linear(x, w["cls.predictions.transform.dense.weight"],
                                 w["cls.predictions.transform.dense.bias"])]
    t = layer_norm(t, w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"])
    return linear(t, w["bert.embeddings.word_embeddings.weight"], w["cls.predictions.bias"])  # tied decoder


# The batch the test feeds: row 1 is right-padded with pad id 0 (type 0, mask 0).
IDS = [[2, 5, 7, 3, 9, 11, 3], [2, 6, 3, 8, 3, 0, 0]]
TYPES_ = [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]]
MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]


def fmt(xs):
    return "{" + ", ".join(f"{x:.9g}f" for x in xs) + "}"


def main():
    w = weights()
    r0, _, s0 = forward(w, IDS[0], TYPES_[0], MASK[0])
    r1, pooled1, s1 = forward(w, IDS[1], TYPES_[1], MASK[1])
    print(f"// scores of the two rows\nconstexpr float kScores[2] = {fmt([s0, s1])};")
    print(f"// row 0, position 0 after embeddings + LayerNorm\nconstexpr float kEmbeddingsRow0Pos0[8] = {fmt(r0[0][0])};")
    print(f"// row 0, position 3 after layer 0\nconstexpr float kLayer0Row0Pos3[8] = {fmt(r0[1][3])};")
    print(f"// row 1, [CLS] after the last layer\nconstexpr float kLastRow1Cls[8] = {fmt(r1[2][0])};")
    print(f"// row 1 pooled output\nconstexpr float kPooledRow1[8] = {fmt(pooled1)};")
    print(f"// MLM logits of row 0, position 2\nconstexpr float kMlmRow0Pos2[20] = {fmt(mlm_logits(w, r0[2][2]))};")
    # Row 1 with the token types of its second segment flipped to 0: a different score.
    t = list(TYPES_[1]); t[3] = t[4] = 0
    _, _, s_types = forward(w, IDS[1], t, MASK[1])
    print(f"// row 1 with every token type 0\nconstexpr float kScoreRow1AllType0 = {s_types:.9g}f;")


if __name__ == "__main__":
    main()
