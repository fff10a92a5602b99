#include "text/pair_encoding.h"

#include <algorithm>

#include "core/error.h"

namespace disranker {

PairEncoder::PairEncoder(const Tokenizer& tokenizer, PairEncoderOptions options)
    : tokenizer_(tokenizer), options_(std::move(options)) {
  const auto& special = tokenizer_.special();
  std::size_t specials = 0;
  if (options_.style == PairStyle::kBert) {
    if (special.cls < 0 || special.sep < 0)
      throw Error("pair encoding: the tokenizer has no [CLS] or [SEP] token");
    specials = 4;
  } else {
    if (special.eos < 0) throw Error("pair encoding: the tokenizer has no end-of-sequence token (</s>)");
    if (options_.add_bos && special.bos < 0)
      throw Error("pair encoding: add_bos is set but the tokenizer has no bos");
    query_prefix_ids_ = tokenizer_.encode(options_.query_prefix);
    document_prefix_ids_ = tokenizer_.encode(options_.document_prefix);
    separator_ids_ = tokenizer_.encode(options_.field_separator);
    specials = query_prefix_ids_.size() + document_prefix_ids_.size() + separator_ids_.size() + 1 +
               (options_.add_bos ? 1 : 0);
  }
  if (options_.max_length < specials + options_.protected_query_tokens) {
    throw Error("pair encoding: max_length " + std::to_string(options_.max_length) + " cannot hold the " +
                std::to_string(specials) + " template tokens and the " +
                std::to_string(options_.protected_query_tokens) + " protected query tokens");
  }
}

EncodedPair PairEncoder::encode(std::string_view query, std::string_view title, std::string_view summary,
                                std::size_t max_document_tokens) const {
  std::vector<TokenId> q = tokenizer_.encode(query);
  std::vector<TokenId> t = tokenizer_.encode(title);
  std::vector<TokenId> s = tokenizer_.encode(summary);
  const bool bert = options_.style == PairStyle::kBert;
  bool document_cut = false;
  if (max_document_tokens > 0 && t.size() + s.size() > max_document_tokens) {
    document_cut = true;
    s.resize(t.size() >= max_document_tokens ? 0 : max_document_tokens - t.size());
    t.resize(std::min(t.size(), max_document_tokens));
  }

  // Template tokens for the fields that are present: a field cut to nothing takes its separator with it.
  auto template_tokens = [&]() -> std::size_t {
    if (bert) return 2 + (t.empty() ? 0 : 1) + (s.empty() ? 0 : 1);  // [CLS] q [SEP] (t [SEP]) (s [SEP])
    return query_prefix_ids_.size() + document_prefix_ids_.size() + 1 + (options_.add_bos ? 1 : 0) +
           (!t.empty() && !s.empty() ? separator_ids_.size() : 0);
  };
  auto excess = [&]() -> std::size_t {
    const std::size_t total = template_tokens() + q.size() + t.size() + s.size();
    return total > options_.max_length ? total - options_.max_length : 0;
  };

  EncodedPair out;
  out.truncated = document_cut || excess() > 0;
  // Cut the summary, then the title, then the unprotected tail of the query, until everything fits.
  auto cut = [&excess](std::vector<TokenId>& field, std::size_t keep_at_least) {
    const std::size_t removable = field.size() > keep_at_least ? field.size() - keep_at_least : 0;
    field.resize(field.size() - std::min(removable, excess()));
  };
  cut(s, 0);
  cut(t, 0);
  cut(q, options_.protected_query_tokens);

  auto append = [&out](const std::vector<TokenId>& ids, std::uint8_t type) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.type_ids.insert(out.type_ids.end(), ids.size(), type);
  };
  auto append_one = [&out](TokenId id, std::uint8_t type) {
    out.ids.push_back(id);
    out.type_ids.push_back(type);
  };
  const auto& special = tokenizer_.special();
  out.query_tokens = q.size();
  if (bert) {
    append_one(special.cls, 0);
    append(q, 0);
    append_one(special.sep, 0);
    if (!t.empty()) append(t, 1), append_one(special.sep, 1);
    if (!s.empty()) append(s, 1), append_one(special.sep, 1);
  } else {
    if (options_.add_bos) append_one(special.bos, 0);
    append(query_prefix_ids_, 0);
    append(q, 0);
    append(document_prefix_ids_, 0);
    append(t, 0);
    if (!t.empty() && !s.empty()) append(separator_ids_, 0);
    append(s, 0);
    append_one(special.eos, 0);
  }
  return out;
}

EncodedPair PairEncoder::encode_single(std::string_view text) const {
  std::vector<TokenId> ids = tokenizer_.encode(text);
  const auto& special = tokenizer_.special();
  const bool bert = options_.style == PairStyle::kBert;
  const bool bos = !bert && options_.add_bos;
  const std::size_t fixed = bert ? 2 : 1 + (bos ? 1 : 0);
  EncodedPair out;
  if (ids.size() + fixed > options_.max_length) {
    ids.resize(options_.max_length - fixed);
    out.truncated = true;
  }
  if (bert) out.ids.push_back(special.cls);
  if (bos) out.ids.push_back(special.bos);
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.ids.push_back(bert ? special.sep : special.eos);
  out.type_ids.assign(out.ids.size(), 0);
  out.query_tokens = ids.size();
  return out;
}

std::unique_ptr<PairEncoder> make_model_pair_encoder(const Tokenizer& tokenizer, PairEncoderOptions options,
                                                     std::int64_t max_length, std::int64_t max_positions,
                                                     const std::string& source) {
  if (max_length < 1 || max_length > max_positions) {
    throw Error(source, 0, "max_length",
                std::to_string(max_length) + " must be in [1, " + std::to_string(max_positions) +
                    "] (the model's max_position_embeddings)");
  }
  options.max_length = static_cast<std::size_t>(max_length);
  return std::make_unique<PairEncoder>(tokenizer, std::move(options));
}

Batch make_batch(std::span<const EncodedPair> pairs, TokenId pad_id) {
  Batch batch;
  batch.batch_size = pairs.size();
  for (const auto& p : pairs) batch.seq_len = std::max(batch.seq_len, p.ids.size());
  const std::size_t total = batch.batch_size * batch.seq_len;
  batch.input_ids.assign(total, pad_id);
  batch.token_type_ids.assign(total, 0);
  batch.attention_mask.assign(total, 0);
  for (std::size_t row = 0; row < pairs.size(); ++row) {
    const auto& p = pairs[row];
    for (std::size_t i = 0; i < p.ids.size(); ++i) {
      batch.input_ids[row * batch.seq_len + i] = p.ids[i];
      batch.token_type_ids[row * batch.seq_len + i] = p.type_ids[i];
      batch.attention_mask[row * batch.seq_len + i] = 1;
    }
    batch.lengths.push_back(p.ids.size());
  }
  return batch;
}

}  // namespace disranker
