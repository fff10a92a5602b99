#!/usr/bin/env node
// The pre-tokenizer of a Hugging Face tokenizer.json alone, as an oracle for BpeTokenizer::pre_tokenize. Reads one
// input per line on stdin (the base64 of the raw bytes; Node decodes them with the WHATWG UTF-8 decoder, each
// maximal invalid subpart becoming U+FFFD) and writes one JSON line per input: {"words": [...]}, the strings of
// PreTokenizer.preTokenizeString (no normalizer, no added tokens).
//
// Usage: node hf_pretokenize.js --tokenizer tokenizer.json < inputs.b64 > outputs.jsonl
const readline = require('readline');
const { Tokenizer } = require('tokenizers');

async function main() {
  const i = process.argv.indexOf('--tokenizer');
  if (i < 0 || !process.argv[i + 1]) throw new Error('--tokenizer FILE is required');
  const preTokenizer = Tokenizer.fromFile(process.argv[i + 1]).getPreTokenizer();
  if (!preTokenizer) throw new Error('the tokenizer has no pre_tokenizer');
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    const text = Buffer.from(line, 'base64').toString('utf8');
    const words = preTokenizer.preTokenizeString(text).map(([word]) => word);
    process.stdout.write(JSON.stringify({ words }) + '\n');
  }
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
