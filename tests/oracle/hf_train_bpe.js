#!/usr/bin/env node
// Trains a byte-level BPE tokenizer.json with the Hugging Face tokenizers library (Node binding), as a reference
// for DisRanker's BpeTokenizer (same ids) and BpeTrainer (same merges).
//
// Usage: node hf_train_bpe.js --out FILE [--style gpt2|roberta|qwen2|llama3] [--vocab-size N]
//                             [--alphabet full|seen] [--raw] CORPUS...
//   CORPUS: plain text files; every line (with its "\n") is one training sequence (Tokenizer.train(files)).
//   --style (default gpt2):
//     gpt2     ByteLevel pre-tokenizer (GPT-2 regex, add_prefix_space false); added "<|endoftext|>" (special, also
//              in the model vocabulary, as in GPT-2's files).
//     roberta  ByteLevel with add_prefix_space true; added special "<s>", "<pad>", "</s>", "<unk>", "<mask>"
//              (lstrip), and non-special "[WORD]" (single_word), "<rs>" (rstrip), "hello world" (normalized).
//     qwen2    NFC normalizer; Sequence[Split(Qwen2's regex, Isolated), ByteLevel(use_regex false)]; added special
//              "<|endoftext|>", "<|im_start|>", "<|im_end|>"; merges written as legacy "a b" strings.
//     llama3   Sequence[Split(Llama-3's regex, Isolated), ByteLevel(use_regex false)]; ignore_merges true; added
//              special "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|eot_id|>".
//   --vocab-size N (default 8000): the binding's train() runs Hugging Face's default BpeTrainer (vocab 30000,
//              min_frequency 0, no special tokens, alphabet = the characters seen); its merges are greedy, so keeping
//              the merges up to the one that creates id N-1 is exactly what training with vocab_size N gives.
//   --alphabet full (default): the byte characters the corpus lacks are appended to the vocabulary (ids N, N+1, ...)
//              so that every byte encodes; seen: they are not (such bytes are dropped by the BPE, as HF does).
//   --raw      only the trained model (truncated to N): no added tokens and no extra alphabet, for comparing
//              merges with DisRanker's trainer.
// Prints one JSON line: {"vocab": ..., "merges": ..., "added": ..., "train_seconds": ...}.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer, byteLevelAlphabet } = require('tokenizers');

const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function argument(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function added(id, content, special, options = {}) {
  return {
    id, content, single_word: !!options.single_word, lstrip: !!options.lstrip, rstrip: !!options.rstrip,
    normalized: options.normalized !== undefined ? options.normalized : !special, special,
  };
}

const byteLevel = (addPrefixSpace, useRegex) =>
  ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: useRegex });
const split = (pattern) =>
  ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });

const STYLES = {
  gpt2: {
    normalizer: null, pre_tokenizer: byteLevel(false, true),
    added: [['<|endoftext|>', true, {}, true]],
  },
  roberta: {
    normalizer: null, pre_tokenizer: byteLevel(true, true),
    added: [['<s>', true, {}], ['<pad>', true, {}], ['</s>', true, {}], ['<unk>', true, {}],
      ['<mask>', true, { lstrip: true }], ['[WORD]', false, { single_word: true, normalized: false }],
      ['<rs>', false, { rstrip: true, normalized: false }], ['hello world', false, { normalized: true }]],
  },
  qwen2: {
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(QWEN2_PATTERN), byteLevel(false, false)] },
    added: [['<|endoftext|>', true, {}], ['<|im_start|>', true, {}], ['<|im_end|>', true, {}]],
    legacy_merges: true,
  },
  llama3: {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(LLAMA3_PATTERN), byteLevel(false, false)] },
    added: [['<|begin_of_text|>', true, {}], ['<|end_of_text|>', true, {}],
      ['<|reserved_special_token_0|>', true, {}], ['<|eot_id|>', true, {}]],
    ignore_merges: true,
  },
};

function main() {
  const out = argument('--out');
  const styleName = argument('--style', 'gpt2');
  const vocabSize = parseInt(argument('--vocab-size', '8000'), 10);
  const alphabet = argument('--alphabet', 'full');
  const raw = process.argv.includes('--raw');
  const valued = new Set(['--out', '--style', '--vocab-size', '--alphabet']);
  const files = [];
  for (let i = 2; i < process.argv.length; ++i) {
    if (valued.has(process.argv[i])) ++i;
    else if (!process.argv[i].startsWith('--')) files.push(process.argv[i]);
  }
  const style = STYLES[styleName];
  if (!out || !style || files.length === 0 || !(vocabSize > 0) || !['full', 'seen'].includes(alphabet)) {
    throw new Error('usage: hf_train_bpe.js --out FILE [--style gpt2|roberta|qwen2|llama3] [--vocab-size N] ' +
      '[--alphabet full|seen] [--raw] CORPUS...');
  }

  const decoder = byteLevel(true, true);
  const tokenizer = Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: style.normalizer,
    pre_tokenizer: style.pre_tokenizer, post_processor: null, decoder,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: {}, merges: [],
    },
  }));
  const start = Date.now();
  tokenizer.train(files);
  const trainSeconds = (Date.now() - start) / 1000;
  const temp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hf-train-bpe-')), 'trained.json');
  tokenizer.save(temp);
  const trained = JSON.parse(fs.readFileSync(temp, 'utf8'));
  fs.rmSync(path.dirname(temp), { recursive: true, force: true });

  // Truncate to vocabSize: the merges up to the first one that creates an id >= vocabSize.
  const model = trained.model;
  const vocab = {};
  let size = 0;
  for (const [token, id] of Object.entries(model.vocab)) {
    if (id < vocabSize) {
      vocab[token] = id;
      size = Math.max(size, id + 1);
    }
  }
  const merges = [];
  for (const merge of model.merges) {
    const [a, b] = Array.isArray(merge) ? merge : merge.split(' ');
    if (!(a + b in vocab)) break;
    merges.push([a, b]);
  }
  const addedTokens = [];
  if (!raw) {
    if (alphabet === 'full') {
      const missing = byteLevelAlphabet().filter((c) => !(c in vocab)).sort((x, y) => x.codePointAt(0) - y.codePointAt(0));
      for (const c of missing) vocab[c] = size++;
    }
    for (const [content, special, options, inModel] of style.added) {
      addedTokens.push(added(size, content, special, options));
      if (inModel) vocab[content] = size;
      ++size;
    }
  }
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: addedTokens,
    normalizer: style.normalizer, pre_tokenizer: style.pre_tokenizer, post_processor: null, decoder,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: !!style.ignore_merges, vocab,
      merges: style.legacy_merges && !raw ? merges.map(([a, b]) => `${a} ${b}`) : merges,
    },
  };
  const text = JSON.stringify(json, null, 1);
  Tokenizer.fromString(text);  // Hugging Face must load what we wrote
  fs.writeFileSync(out, text + '\n');
  process.stdout.write(JSON.stringify({
    vocab: Object.keys(vocab).length, merges: merges.length, added: addedTokens.length, train_seconds: trainSeconds,
  }) + '\n');
}

try {
  main();
} catch (e) {
  console.error(e.message || e);
  process.exit(1);
}
