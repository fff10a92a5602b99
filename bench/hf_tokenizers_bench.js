#!/usr/bin/env node
// Hugging Face tokenizers (Rust, Node binding) throughput on the same input as bench_tokenizers. Threads are set
// with RAYON_NUM_THREADS by bench/tokenizers.sh (the library parallelises encodeBatch with rayon). Prints the same
// JSON line as bench_tokenizers, for the fastest of --repeat runs. The input is passed as one batch, the fastest
// way to call the library (no per-call overhead from Node).
// Usage: node hf_tokenizers_bench.js --tokenizer FILE --input STRINGS.txt --threads N [--repeat R]
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'tests', 'oracle', 'node_modules', 'tokenizers'));

function argument(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function bertFromVocab(file) {
  const vocab = {};
  fs.readFileSync(file, 'utf8').split('\n').forEach((t, id) => { if (t.length > 0) vocab[t] = id; });
  return Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], post_processor: null, decoder: null,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  }));
}

async function main() {
  const file = argument('--tokenizer');
  const tokenizer = file.endsWith('.json') ? Tokenizer.fromFile(file) : bertFromVocab(file);
  const lines = fs.readFileSync(argument('--input'), 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l, 'utf8'), 0);
  const repeat = Number(argument('--repeat', '3'));
  let best = Infinity;
  let tokens = 0;
  for (let r = 0; r < repeat; r++) {
    const start = process.hrtime.bigint();
    const encodings = await tokenizer.encodeBatch(lines, { addSpecialTokens: false });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.min(best, seconds);
    tokens = encodings.reduce((n, e) => n + e.getLength(), 0);
  }
  console.log(JSON.stringify({ impl: 'hf-tokenizers', threads: Number(argument('--threads', '1')), strings: lines.length, bytes, tokens, seconds: best }));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
