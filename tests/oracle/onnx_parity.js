#!/usr/bin/env node
// Runs an exported BERT cross-encoder (.onnx) in ONNX Runtime (onnxruntime-node) on hand-made padded batches and
// compares its logits with the plain-JavaScript reference (bert_reference.js) computed from the model
// directory's safetensors. Also checks that padding does not change a sequence's logit.
//
// Usage: node onnx_parity.js --model DIR --onnx FILE [--tolerance 1e-4] [--padding-tolerance 1e-5]
//          [--optimization all|disabled] [--seed 7]
// Prints one line of JSON {"max_abs_diff", "max_padding_diff", "pairs", "logit_range"}; exits 1 when a
// difference exceeds its tolerance (the offending pairs are listed on stderr).
'use strict';
const ort = require('onnxruntime-node');
const { BertReference } = require('./bert_reference.js');
const { option, batchFeeds } = require('./onnx_util.js');

// A deterministic stream of integers.
function integers(seed) {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
}

// One pair: [CLS] q [SEP] d [SEP] with token types 0 for the query part, 1 for the document part.
function makePair(next, vocab, queryLength, docLength) {
  const CLS = 2, SEP = 3;
  const word = () => 5 + next(vocab - 5);
  const ids = [CLS, ...Array.from({ length: queryLength }, word), SEP, ...Array.from({ length: docLength }, word), SEP];
  const type_ids = ids.map((_, i) => (i < queryLength + 2 ? 0 : 1));
  return { ids, type_ids };
}

// Pads pairs to the longest (pad id 0, type 0, mask 0) and runs them as one batch.
async function run(session, pairs) {
  const B = pairs.length;
  const { inputs, length: T } = batchFeeds(ort, pairs);
  const { logits } = await session.run(inputs);
  if (logits.dims.length !== 2 || logits.dims[0] !== B || logits.dims[1] !== 1) {
    throw new Error(`logits have shape [${logits.dims}], expected [${B}, 1]`);
  }
  return { logits: Array.from(logits.data), T };
}

async function main() {
  const modelDir = option('--model');
  const onnxPath = option('--onnx');
  if (!modelDir || !onnxPath) throw new Error('--model DIR and --onnx FILE are required');
  const tolerance = Number(option('--tolerance', 1e-4));
  const paddingTolerance = Number(option('--padding-tolerance', 1e-5));
  const reference = new BertReference(modelDir);
  const { vocab_size: vocab, max_position_embeddings: maxPosition } = reference.config;
  const session = await ort.InferenceSession.create(onnxPath, {
    graphOptimizationLevel: option('--optimization', 'all'), intraOpNumThreads: 1, interOpNumThreads: 1,
  });
  const names = [...session.inputNames].sort().join(',');
  if (names !== 'attention_mask,input_ids,token_type_ids' || session.outputNames.join(',') !== 'logits') {
    throw new Error(`unexpected graph signature: inputs ${session.inputNames}, outputs ${session.outputNames}`);
  }
  // int64 [batch, sequence] inputs with symbolic (dynamic) dimensions; float32 [batch, 1] logits.
  for (const m of session.inputMetadata || []) {
    if (m.type !== 'int64' || m.shape.length !== 2 || m.shape.some((d) => typeof d !== 'string')) {
      throw new Error(`input ${m.name}: ${m.type} [${m.shape}], expected int64 with two dynamic dimensions`);
    }
  }
  for (const m of session.outputMetadata || []) {
    if (m.type !== 'float32' || m.shape.length !== 2 || typeof m.shape[0] !== 'string' || m.shape[1] !== 1) {
      throw new Error(`output ${m.name}: ${m.type} [${m.shape}], expected float32 [batch, 1]`);
    }
  }

  const next = integers(Number(option('--seed', 7)));
  const batches = [
    // different lengths in one batch
    [[3, 8], [1, 1], [6, 20], [2, 4], [5, 12]].map(([q, d]) => makePair(next, vocab, q, d)),
    // one pair alone: no padding at all
    [makePair(next, vocab, 4, 9)],
    // the longest sequence the position table allows beside a short one
    [makePair(next, vocab, 5, maxPosition - 8), makePair(next, vocab, 2, 3)],
    // [CLS] [SEP] [SEP] (an empty query and document) and a batch of identical lengths
    [makePair(next, vocab, 0, 0), makePair(next, vocab, 7, 7), makePair(next, vocab, 7, 7)],
  ];

  let maxDiff = 0, maxPaddingDiff = 0, pairs = 0, lo = Infinity, hi = -Infinity, failed = false;
  for (const [index, batch] of batches.entries()) {
    const { logits, T } = await run(session, batch);
    for (const [b, pair] of batch.entries()) {
      const padded = { ids: [...pair.ids], types: [...pair.type_ids], mask: pair.ids.map(() => 1) };
      while (padded.ids.length < T) { padded.ids.push(0); padded.types.push(0); padded.mask.push(0); }
      const expected = reference.forward(padded.ids, padded.mask, padded.types);
      const diff = Math.abs(logits[b] - expected);
      maxDiff = Math.max(maxDiff, diff);
      lo = Math.min(lo, expected);
      hi = Math.max(hi, expected);
      ++pairs;
      if (!(diff <= tolerance)) {
        console.error(`batch ${index} pair ${b} (length ${pair.ids.length} of ${T}): onnx ${logits[b]} ` +
                      `reference ${expected} |diff| ${diff} > ${tolerance}`);
        failed = true;
      }
      // The same pair alone, without padding.
      if (pair.ids.length < T) {
        const alone = (await run(session, [pair])).logits[0];
        const paddingDiff = Math.abs(alone - logits[b]);
        maxPaddingDiff = Math.max(maxPaddingDiff, paddingDiff);
        if (!(paddingDiff <= paddingTolerance)) {
          console.error(`batch ${index} pair ${b}: padded ${logits[b]} alone ${alone} |diff| ${paddingDiff} ` +
                        `> ${paddingTolerance}`);
          failed = true;
        }
      }
    }
  }
  console.log(JSON.stringify({ max_abs_diff: maxDiff, max_padding_diff: maxPaddingDiff, pairs, logit_range: [lo, hi] }));
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(2);
});
