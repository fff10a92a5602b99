#!/usr/bin/env node
// Writes a tiny random BERT cross-encoder model directory (config.json, model.safetensors, vocab.txt) without
// libtorch, for tests of the model formats (e.g. `disranker export`). Weights are seeded and deliberately
// larger than BERT's N(0, 0.02) initialisation, so that every non-linearity matters.
//
// Usage: node tiny_bert.js --out DIR [--seed 1] [--layers 2] [--hidden 32] [--heads 2] [--intermediate 64]
//          [--vocab 64] [--max-position 48] [--act gelu] [--eps 1e-12] [--dtype F32|F16|BF16] [--no-prefix]
//          [--num-labels 1] [--omit TENSOR] [--extra]   (--extra adds an MLM bias the ranker does not use)
//          [--config config.json]  (the sizes, hidden_act and eps of a Hugging Face BERT config; flags win)
//          [--vocab-file vocab.txt]  (copied as the model's vocab.txt; otherwise [PAD] [UNK] [CLS] [SEP] [MASK] w0 w1 ...)
'use strict';
const fs = require('fs');
const path = require('path');

const configIndex = process.argv.indexOf('--config');
const baseConfig = configIndex >= 0 ? JSON.parse(fs.readFileSync(process.argv[configIndex + 1], 'utf8')) : {};
const fromConfig = {
  '--layers': 'num_hidden_layers', '--hidden': 'hidden_size', '--heads': 'num_attention_heads',
  '--intermediate': 'intermediate_size', '--vocab': 'vocab_size', '--max-position': 'max_position_embeddings',
  '--act': 'hidden_act', '--eps': 'layer_norm_eps',
};

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i >= 0) return process.argv[i + 1];
  return fromConfig[name] in baseConfig ? baseConfig[fromConfig[name]] : fallback;
}

// mulberry32: a small seeded generator; normal samples by Box-Muller.
function generator(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

// float32 → IEEE half, round to nearest even (overflow → infinity; these weights never overflow).
function floatToHalf(value) {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent >= 31) return sign | 0x7c00;
  if (exponent <= 0) {  // subnormal half
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - exponent;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half += 1;
    return sign | half;
  }
  let half = (exponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half += 1;
  return sign | half;
}

function floatToBfloat16(value) {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function main() {
  const out = option('--out');
  if (!out) throw new Error('--out DIR is required');
  const layers = Number(option('--layers', 2));
  const hidden = Number(option('--hidden', 32));
  const heads = Number(option('--heads', 2));
  const intermediate = Number(option('--intermediate', 64));
  const vocab = Number(option('--vocab', 64));
  const maxPosition = Number(option('--max-position', 48));
  const dtype = option('--dtype', 'F32');
  const prefix = process.argv.includes('--no-prefix') ? '' : 'bert.';
  const omit = option('--omit', '');
  const normal = generator(Number(option('--seed', 1)));

  const tensors = [];
  const add = (name, shape, make) => {
    const count = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, values: Array.from({ length: count }, make) });
  };
  const matrix = (name, shape, scale) => add(name, shape, () => scale * normal());
  const linear = (name, out, inSize) => {
    matrix(`${name}.weight`, [out, inSize], 1 / Math.sqrt(inSize));
    matrix(`${name}.bias`, [out], 0.1);
  };
  const norm = (name) => {
    add(`${name}.weight`, [hidden], () => 1 + 0.1 * normal());
    matrix(`${name}.bias`, [hidden], 0.1);
  };
  matrix(`${prefix}embeddings.word_embeddings.weight`, [vocab, hidden], 1);
  matrix(`${prefix}embeddings.position_embeddings.weight`, [maxPosition, hidden], 0.5);
  matrix(`${prefix}embeddings.token_type_embeddings.weight`, [2, hidden], 0.5);
  norm(`${prefix}embeddings.LayerNorm`);
  for (let l = 0; l < layers; ++l) {
    const p = `${prefix}encoder.layer.${l}`;
    for (const part of ['query', 'key', 'value']) linear(`${p}.attention.self.${part}`, hidden, hidden);
    linear(`${p}.attention.output.dense`, hidden, hidden);
    norm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, intermediate, hidden);
    linear(`${p}.output.dense`, hidden, intermediate);
    norm(`${p}.output.LayerNorm`);
  }
  linear(`${prefix}pooler.dense`, hidden, hidden);
  const labels = Number(option('--num-labels', 1));
  linear('classifier', labels, hidden);
  if (process.argv.includes('--extra')) matrix('cls.predictions.bias', [vocab], 0.1);

  // safetensors: u64 header length, JSON header (padded with spaces to 8 bytes), then the data.
  const size = dtype === 'F32' ? 4 : 2;
  const header = {};
  const chunks = [];
  let offset = 0;
  for (const t of tensors.filter((x) => x.name !== omit)) {
    const data = Buffer.alloc(t.values.length * size);
    t.values.forEach((v, i) => {
      if (dtype === 'F32') data.writeFloatLE(v, 4 * i);
      else if (dtype === 'F16') data.writeUInt16LE(floatToHalf(v), 2 * i);
      else if (dtype === 'BF16') data.writeUInt16LE(floatToBfloat16(v), 2 * i);
      else throw new Error(`--dtype ${dtype}: F32, F16 or BF16`);
    });
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'model.safetensors'), Buffer.concat([length, Buffer.from(json), ...chunks]));

  const config = {
    architectures: ['BertForSequenceClassification'], model_type: 'bert', vocab_size: vocab, hidden_size: hidden,
    num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: intermediate,
    hidden_act: option('--act', 'gelu'), max_position_embeddings: maxPosition, type_vocab_size: 2,
    layer_norm_eps: Number(option('--eps', 1e-12)), pad_token_id: 0,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
  };
  if (labels !== 1) config.num_labels = labels;
  else config.id2label = { 0: 'LABEL_0' };
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const vocabFile = option('--vocab-file');
  if (vocabFile) {
    fs.copyFileSync(vocabFile, path.join(out, 'vocab.txt'));
  } else {
    const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
    const words = Array.from({ length: vocab - special.length }, (_, i) => `w${i}`);
    fs.writeFileSync(path.join(out, 'vocab.txt'), [...special, ...words].join('\n') + '\n');
  }
}

main();
