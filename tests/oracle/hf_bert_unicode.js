#!/usr/bin/env node
// Hugging Face's BertNormalizer and BertPreTokenizer, probed on every Unicode scalar value. Hugging Face takes its
// character classes from crates pinned to old Unicode versions (general categories, NFD) and from Rust's std
// (White_Space, lowercase mapping), so no single Unicode release describes it: this probe is the ground truth that
// scripts/gen_bert_unicode_tables.py turns into src/text/bert_unicode_tables.h and that tests/test_wordpiece.cc
// checks DisRanker against.
//
// Usage: node hf_bert_unicode.js [--ccc FILE] > hf_bert_unicode.json
//        node hf_bert_unicode.js --normalize < inputs.b64 > outputs.jsonl
//   --normalize: for each input line (base64 of UTF-8 bytes) one JSON line {"clean", "chinese", "strip", "lower",
//   "bert"}: the string through BertNormalizer with only that option on ("bert": the default normalizer).
// Output (one JSON object; code points as numbers):
//   removed:  dropped by clean_text (U+0000, U+FFFD, control/format/private-use except \t \n \r)
//   space:    mapped to ' ' by clean_text (code points other than ' ' itself)
//   chinese:  padded with spaces by handle_chinese_chars
//   strip:    {cp: [cps]} where strip_accents (NFD, then drop nonspacing marks) changes the character
//   lower:    {cp: [cps]} where lowercase changes the character
//   nfd:      {cp: [cps]} where NFD changes the character
//   whitespace: code points the pre-tokenizer splits on (removed)
//   punctuation: code points the pre-tokenizer isolates
//   ccc_zero: code points that NFD does not reorder after U+0345 (combining class 240), among those listed in the
//             optional file given with --ccc FILE (one "cp ccc" per line, from utf8proc)
const path = require('path');
const fs = require('fs');
const t = require(path.join(__dirname, 'node_modules', 'tokenizers'));

const clean = t.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false });
const strip = t.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
const lower = t.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true });
const chinese = t.bertNormalizer({ cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false });
const nfd = t.nfdNormalizer();
const pre = t.bertPreTokenizer();

if (process.argv.includes('--normalize')) {
  const bert = t.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true });
  const lines = fs.readFileSync(0, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const chunks = [];
  for (const line of lines) {
    const s = Buffer.from(line, 'base64').toString('utf8');
    chunks.push(JSON.stringify({ clean: clean.normalizeString(s), chinese: chinese.normalizeString(s),
      strip: strip.normalizeString(s), lower: lower.normalizeString(s), bert: bert.normalizeString(s) }));
  }
  process.stdout.write(chunks.join('\n') + (chunks.length ? '\n' : ''));
  process.exit(0);
}
const out = { removed: [], space: [], chinese: [], strip: {}, lower: {}, nfd: {}, whitespace: [], punctuation: [], ccc_zero: [] };
const codes = (s) => [...s].map((x) => x.codePointAt(0));
for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  const s = 'x' + c + 'x';
  let r = clean.normalizeString(s);
  if (r === 'xx') out.removed.push(cp);
  else if (r === 'x x' && cp !== 0x20) out.space.push(cp);
  else if (r !== s) throw new Error(`clean_text: unexpected ${cp}: ${JSON.stringify(r)}`);
  r = chinese.normalizeString(c);
  if (r === ' ' + c + ' ') out.chinese.push(cp);
  else if (r !== c) throw new Error(`chinese: unexpected ${cp}`);
  r = strip.normalizeString(c);
  if (r !== c) out.strip[cp] = codes(r);
  r = lower.normalizeString(c);
  if (r !== c) out.lower[cp] = codes(r);
  r = nfd.normalizeString(c);
  if (r !== c) out.nfd[cp] = codes(r);
  const p = pre.preTokenizeString(s);
  if (p.length === 2 && p[0][0] === 'x' && p[1][0] === 'x') out.whitespace.push(cp);
  else if (p.length === 3 && p[1][0] === c) out.punctuation.push(cp);
  else if (!(p.length === 1 && p[0][0] === s)) throw new Error(`pre-tokenizer: unexpected ${cp}`);
}
const i = process.argv.indexOf('--ccc');
if (i >= 0) {
  for (const line of fs.readFileSync(process.argv[i + 1], 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const [cp, ccc] = line.trim().split(/\s+/).map(Number);
    const c = String.fromCodePoint(cp);
    if (ccc === 0 || ccc >= 240 || nfd.normalizeString(c) !== c) continue;
    const r = nfd.normalizeString('a\u0345' + c);
    if (r === 'a\u0345' + c) out.ccc_zero.push(cp);
    else if (r !== 'a' + c + '\u0345') throw new Error(`ccc: unexpected ${cp}`);
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
