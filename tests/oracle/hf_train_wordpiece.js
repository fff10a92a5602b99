#!/usr/bin/env node
// Trains a WordPiece vocabulary with the Hugging Face tokenizers library (Node binding), as a reference for
// DisRanker's WordPieceTrainer. The binding's Tokenizer.train(files) runs Hugging Face's default WordPieceTrainer
// (vocab_size 30000, min_frequency 0, no special tokens, no alphabet limit) over the standard BERT pipeline
// (BertNormalizer lowercasing, BertPreTokenizer). Hugging Face gives the "##c" tokens ids in hash-map order, so two
// runs can differ in how ties between equally frequent pairs are broken.
//
// Usage: node hf_train_wordpiece.js --out VOCAB.txt CORPUS...   (every line of a corpus file is one text)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, 'node_modules', 'tokenizers'));

const i = process.argv.indexOf('--out');
if (i < 0) throw new Error('--out VOCAB.txt is required');
const out = process.argv[i + 1];
const files = process.argv.slice(2).filter((_, k) => k !== i - 2 && k !== i - 1);
const tokenizer = Tokenizer.fromString(JSON.stringify({
  version: '1.0', truncation: null, padding: null, added_tokens: [], post_processor: null,
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: { '[UNK]': 0 } },
}));
tokenizer.train(files);
const temp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hf-wordpiece-')), 'tokenizer.json');
tokenizer.save(temp);
const vocab = JSON.parse(fs.readFileSync(temp, 'utf8')).model.vocab;
fs.rmSync(path.dirname(temp), { recursive: true, force: true });
const tokens = Object.entries(vocab).sort((a, b) => a[1] - b[1]).map(([token]) => token);
fs.writeFileSync(out, tokens.join('\n') + '\n');
