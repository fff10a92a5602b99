// An independent BERT cross-encoder in plain JavaScript: the reference the ONNX export is checked against.
// Written from Hugging Face transformers' BertForSequenceClassification (modeling_bert.py, eval mode), not from
// DisRanker's code. Computes in float64 from the stored weights (read from safetensors, F32 / F16 / BF16).
//
//   embeddings  word[id] + position[t] + token_type[type] → LayerNorm(layer_norm_eps)
//   layer       self-attention: q, k, v = x Wᵀ + b per head; softmax(q·k / √head_dim + (1 − mask) · finfo.min) · v;
//               attention.output.dense + x → LayerNorm; intermediate.dense → act → output.dense + h → LayerNorm
//   pooler      tanh(pooler.dense(h[0])); classifier Linear(hidden, 1)
'use strict';
const fs = require('fs');
const path = require('path');

// ---- safetensors ---------------------------------------------------------------------------------------------

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function bfloat16ToFloat(bits) {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits << 16, true);
  return view.getFloat32(0, true);
}

// {name: {dtype, shape, values: Float64Array}} of one safetensors file.
function readSafetensors(file) {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const data = bytes.subarray(base + begin, base + end);
    const count = info.shape.reduce((a, b) => a * b, 1);
    const values = new Float64Array(count);
    for (let i = 0; i < count; ++i) {
      if (info.dtype === 'F32') values[i] = data.readFloatLE(4 * i);
      else if (info.dtype === 'F16') values[i] = halfToFloat(data.readUInt16LE(2 * i));
      else if (info.dtype === 'BF16') values[i] = bfloat16ToFloat(data.readUInt16LE(2 * i));
      else throw new Error(`${file}: ${name}: dtype ${info.dtype} not handled by the reference`);
    }
    tensors[name] = { dtype: info.dtype, shape: info.shape, values };
  }
  return tensors;
}

// ---- the model --------------------------------------------------------------------------------------------------

class BertReference {
  constructor(modelDir) {
    this.config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
    this.tensors = readSafetensors(path.join(modelDir, 'model.safetensors'));
  }

  // The parameter under its BertForSequenceClassification name (checkpoints may drop the "bert." prefix).
  param(name) {
    const t = this.tensors[name] || this.tensors[name.replace(/^bert\./, '')];
    if (!t) throw new Error(`reference: no tensor ${name}`);
    return t.values;
  }

  // y[o] = Σ_i x[i] W[o][i] + b[o] (torch.nn.Linear, weight [out, in]).
  linear(x, prefix) {
    const w = this.param(`${prefix}.weight`);
    const b = this.param(`${prefix}.bias`);
    const out = b.length;
    const inSize = x.length;
    const y = new Float64Array(out);
    for (let o = 0; o < out; ++o) {
      let s = b[o];
      for (let i = 0; i < inSize; ++i) s += x[i] * w[o * inSize + i];
      y[o] = s;
    }
    return y;
  }

  layerNorm(x, prefix) {
    const gamma = this.param(`${prefix}.weight`);
    const beta = this.param(`${prefix}.bias`);
    const n = x.length;
    let mean = 0;
    for (const v of x) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of x) variance += (v - mean) * (v - mean);
    variance /= n;  // biased, as torch.nn.LayerNorm
    const inv = 1 / Math.sqrt(variance + this.config.layer_norm_eps);
    return Float64Array.from(x, (v, i) => (v - mean) * inv * gamma[i] + beta[i]);
  }

  activation(v) {
    switch (this.config.hidden_act || 'gelu') {
      case 'gelu': return 0.5 * v * (1 + erf(v / Math.SQRT2));
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      case 'relu': return Math.max(0, v);
      case 'silu': return v / (1 + Math.exp(-v));
      default: throw new Error(`reference: hidden_act ${this.config.hidden_act}`);
    }
  }

  // The logit of one sequence: ids, mask and types are arrays of one length (the batch's padded length).
  forward(ids, mask, types) {
    const c = this.config;
    const H = c.hidden_size;
    const heads = c.num_attention_heads;
    const hd = H / heads;
    const T = ids.length;
    const word = this.param('bert.embeddings.word_embeddings.weight');
    const position = this.param('bert.embeddings.position_embeddings.weight');
    const tokenType = this.param('bert.embeddings.token_type_embeddings.weight');
    let hidden = [];
    for (let t = 0; t < T; ++t) {
      const e = new Float64Array(H);
      for (let j = 0; j < H; ++j) e[j] = word[ids[t] * H + j] + position[t * H + j] + tokenType[types[t] * H + j];
      hidden.push(this.layerNorm(e, 'bert.embeddings.LayerNorm'));
    }
    const lowest = -3.4028234663852886e38;  // torch.finfo(torch.float32).min
    for (let l = 0; l < c.num_hidden_layers; ++l) {
      const p = `bert.encoder.layer.${l}`;
      const q = hidden.map((x) => this.linear(x, `${p}.attention.self.query`));
      const k = hidden.map((x) => this.linear(x, `${p}.attention.self.key`));
      const v = hidden.map((x) => this.linear(x, `${p}.attention.self.value`));
      const context = hidden.map(() => new Float64Array(H));
      for (let h = 0; h < heads; ++h) {
        for (let i = 0; i < T; ++i) {
          const scores = new Float64Array(T);
          for (let j = 0; j < T; ++j) {
            let s = 0;
            for (let d = 0; d < hd; ++d) s += q[i][h * hd + d] * k[j][h * hd + d];
            scores[j] = s / Math.sqrt(hd) + (1 - mask[j]) * lowest;
          }
          const max = Math.max(...scores);
          let total = 0;
          for (let j = 0; j < T; ++j) total += (scores[j] = Math.exp(scores[j] - max));
          for (let j = 0; j < T; ++j) {
            const weight = scores[j] / total;
            for (let d = 0; d < hd; ++d) context[i][h * hd + d] += weight * v[j][h * hd + d];
          }
        }
      }
      hidden = hidden.map((x, t) => {
        const attended = this.linear(context[t], `${p}.attention.output.dense`);
        const a = this.layerNorm(attended.map((value, j) => value + x[j]), `${p}.attention.output.LayerNorm`);
        const inner = this.linear(a, `${p}.intermediate.dense`).map((value) => this.activation(value));
        const out = this.linear(inner, `${p}.output.dense`);
        return this.layerNorm(out.map((value, j) => value + a[j]), `${p}.output.LayerNorm`);
      });
    }
    const pooled = this.linear(hidden[0], 'bert.pooler.dense').map(Math.tanh);
    return this.linear(pooled, 'classifier')[0];
  }
}

// erf to double precision: erf(x) = 2/√π · e^(−x²) · Σ_n 2^n x^(2n+1) / (2n+1)!!, a series of positive terms
// (no cancellation); |x| ≥ 6 is ±1 in double precision.
function erf(x) {
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x, sum = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); ++n) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

module.exports = { BertReference, readSafetensors, halfToFloat, bfloat16ToFloat, erf };
