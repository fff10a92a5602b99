// Helpers shared by the ONNX Runtime scripts (onnx_parity.js, onnx_score.js, bench/onnx_runtime_bench.js).
'use strict';

// The value after `--name` on the command line, or the fallback.
function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

// A cross-encoder's inputs for a batch of encoded pairs ({ids, type_ids}): int64 [B, T] tensors, padded to the
// longest pair with id 0, type 0, mask 0. `padded` is B · T, the tokens the model computes.
function batchFeeds(ort, batch) {
  const T = Math.max(...batch.map((p) => p.ids.length));
  const B = batch.length;
  const ids = new BigInt64Array(B * T), mask = new BigInt64Array(B * T), types = new BigInt64Array(B * T);
  batch.forEach((p, b) => p.ids.forEach((id, t) => {
    ids[b * T + t] = BigInt(id);
    mask[b * T + t] = 1n;
    types[b * T + t] = BigInt(p.type_ids[t]);
  }));
  return {
    length: T,
    padded: B * T,
    inputs: {
      input_ids: new ort.Tensor('int64', ids, [B, T]),
      attention_mask: new ort.Tensor('int64', mask, [B, T]),
      token_type_ids: new ort.Tensor('int64', types, [B, T]),
    },
  };
}

module.exports = { option, batchFeeds };
