#!/usr/bin/env node
// The Hugging Face tokenizers library as an oracle. Reads one input per line on stdin: the base64 of the raw
// bytes of a string (so that invalid UTF-8, newlines and control characters travel intact). Node decodes the bytes
// with the WHATWG UTF-8 decoder (each maximal invalid subpart becomes U+FFFD), which is DisRanker's documented
// policy too. Writes one JSON line per input: {"ids": [...], "tokens": [...]} (no special tokens).
//
// Usage: node hf_encode.js --tokenizer FILE [--decode] < inputs.b64 > outputs.jsonl
//   FILE: a tokenizer.json, or a BERT vocab.txt (then the tokenizer is the standard BertWordPiece pipeline:
//         BertNormalizer(lowercase, strip accents as lowercase, Chinese chars, clean text), BertPreTokenizer,
//         WordPiece with "##" and [UNK], max 100 chars per word). Add --cased for a cased vocab.txt.
//   --decode: also output "decoded": decode(ids, skipSpecialTokens=true).
const fs = require('fs');
const readline = require('readline');
const { Tokenizer } = require('tokenizers');

function argument(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function bertFromVocab(path, lowercase) {
  const vocab = {};
  fs.readFileSync(path, 'utf8').split('\n').forEach((token, id) => {
    if (token.length > 0) vocab[token] = id;
  });
  return Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], post_processor: null,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  }));
}

async function main() {
  const path = argument('--tokenizer');
  if (!path) throw new Error('--tokenizer FILE is required');
  const tokenizer = path.endsWith('.json') ? Tokenizer.fromFile(path) : bertFromVocab(path, !process.argv.includes('--cased'));
  const decode = process.argv.includes('--decode');
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const batch = [];
  const flush = async () => {
    const texts = batch.map((b64) => Buffer.from(b64, 'base64').toString('utf8'));
    const encodings = await tokenizer.encodeBatch(texts, { addSpecialTokens: false });
    for (const e of encodings) {
      const out = { ids: e.getIds(), tokens: e.getTokens() };
      if (decode) out.decoded = await tokenizer.decode(out.ids, true);
      process.stdout.write(JSON.stringify(out) + '\n');
    }
    batch.length = 0;
  };
  for await (const line of lines) {
    batch.push(line);
    if (batch.length >= 2048) await flush();
  }
  await flush();
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
