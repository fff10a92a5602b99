#!/usr/bin/env node
// Throughput and latency of an exported cross-encoder (.onnx) in ONNX Runtime (onnxruntime-node, CPU) on encoded
// query-document pairs, in one of two batching modes:
//   sorted   all pairs sorted by length, batches of --batch-size (32), each padded to its longest: offline scoring
//   query    one batch per query (its candidates, e.g. BM25's top 100), padded to its longest: online reranking;
//            the per-query latency is one session.run
// Input: `disranker tokenize --pair --format json` lines ({"ids", "type_ids"}) and the qid of each line.
// Prints one JSON line: pairs, queries, seconds, pairs_per_s, per-query latency (ms: mean, p50, p95, max; for
// sorted: total / queries), padded_tokens / real_tokens. One untimed warm-up pass over the first batches first.
//
// Usage: node onnx_runtime_bench.js --onnx FILE --pairs PAIRS.jsonl --qids QIDS.txt [--mode sorted|query]
//          [--batch-size 32] [--threads 1] [--repeat 1]
'use strict';
const fs = require('fs');
const path = require('path');
const oracle = path.join(__dirname, '..', 'tests', 'oracle');
const ort = require(path.join(oracle, 'node_modules', 'onnxruntime-node'));
const { option, batchFeeds } = require(path.join(oracle, 'onnx_util.js'));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function main() {
  const mode = option('--mode', 'sorted');
  const batchSize = Number(option('--batch-size', 32));
  const threads = Number(option('--threads', 1));
  const repeat = Number(option('--repeat', 1));
  const pairs = fs.readFileSync(option('--pairs'), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
  const qids = fs.readFileSync(option('--qids'), 'utf8').split('\n').filter((l) => l);
  if (qids.length !== pairs.length) throw new Error(`${qids.length} qids for ${pairs.length} pairs`);

  let batches = [];
  if (mode === 'sorted') {
    const order = pairs.map((p, i) => i).sort((a, b) => pairs[a].ids.length - pairs[b].ids.length);
    for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize).map((j) => pairs[j]));
  } else if (mode === 'query') {
    const groups = new Map();
    pairs.forEach((p, i) => {
      if (!groups.has(qids[i])) groups.set(qids[i], []);
      groups.get(qids[i]).push(p);
    });
    batches = [...groups.values()];
  } else {
    throw new Error(`--mode ${mode}: sorted or query`);
  }
  const queries = new Set(qids).size;
  const prepared = batches.map((batch) => batchFeeds(ort, batch));
  const session = await ort.InferenceSession.create(option('--onnx'), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  for (const f of prepared.slice(0, 3)) await session.run(f.inputs);  // warm-up

  let best = Infinity, latencies = [];
  for (let r = 0; r < repeat; ++r) {
    const times = [];
    const start = process.hrtime.bigint();
    for (const f of prepared) {
      const t0 = process.hrtime.bigint();
      await session.run(f.inputs);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (seconds < best) {
      best = seconds;
      latencies = times;
    }
  }
  const real = pairs.reduce((n, p) => n + p.ids.length, 0);
  const padded = prepared.reduce((n, f) => n + f.padded, 0);
  const sorted = [...latencies].sort((a, b) => a - b);
  const perQuery = mode === 'query'
    ? { mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, p50: percentile(sorted, 0.5),
        p95: percentile(sorted, 0.95), max: sorted[sorted.length - 1] }
    : { mean: (best * 1000) / queries };
  console.log(JSON.stringify({
    mode, threads, batches: prepared.length, pairs: pairs.length, queries, seconds: best,
    pairs_per_s: pairs.length / best, latency_ms: perQuery, padding_overhead: padded / real,
  }));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
