#!/usr/bin/env node
// Scores encoded pairs with an exported cross-encoder in ONNX Runtime: reads `disranker tokenize --pair
// --format json` lines ({"ids": [...], "type_ids": [...]}) on stdin, writes one logit per line.
//
// Usage: node onnx_score.js --onnx FILE [--batch-size 8] [--threads 1] < pairs.jsonl > logits.txt
'use strict';
const ort = require('onnxruntime-node');
const readline = require('readline');
const { option, batchFeeds } = require('./onnx_util.js');

async function main() {
  const onnxPath = option('--onnx');
  if (!onnxPath) throw new Error('--onnx FILE is required');
  const batchSize = Number(option('--batch-size', 8));
  const threads = Number(option('--threads', 1));
  const session = await ort.InferenceSession.create(onnxPath, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const pairs = [];
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim()) pairs.push(JSON.parse(line));
  }
  const out = [];
  for (let start = 0; start < pairs.length; start += batchSize) {
    const { logits } = await session.run(batchFeeds(ort, pairs.slice(start, start + batchSize)).inputs);
    for (const v of logits.data) out.push(String(v));
  }
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(2);
});
