// The click-model flags `clicks simulate` and `online` share (--eta, --epsilon, --gamma, --max-grade, the
// dwell medians and spread, and for `online` explicit per-grade mappings), and how they become
// ClickModelOptions for a qrels file. See data/click_model.h for what each parameter means.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/click_model.h"
#include "data/qrels.h"

namespace disranker::cli {

struct ClickModelFlags {
  explicit ClickModelFlags(std::string default_kind) : kind(std::move(default_kind)) {}

  std::string kind;  // pbm, cascade or dbn
  double eta = 1.0;
  double epsilon = 0.1;
  double gamma = 0.9;
  int max_grade = 0;  // 0: implied by an explicit mapping, else the qrels' largest grade (at least 1)
  std::string attractiveness;  // comma-separated probabilities per grade 0..gmax; empty: the formula
  std::string satisfaction;    // the same for the cascade/DBN stopping probability; empty: the attractiveness
  double dwell_min_ms = 8000;
  double dwell_max_ms = 60000;
  double dwell_sigma = 0.5;

  // The options for clicks on `qrels`' grades. Malformed mappings are Errors naming their flag; ranges are
  // checked by ClickModel itself.
  ClickModelOptions resolve(const Qrels& qrels) const;
};

// Adds `kind_flag` (e.g. "--model") and the parameter flags to `command`; --attractiveness and --satisfaction
// only with explicit_mappings.
void add_click_model_flags(CLI::App* command, ClickModelFlags& flags, const std::string& kind_flag,
                           bool explicit_mappings);

// "0.1,0.5,0.9" → {0.1, 0.5, 0.9}: every item a finite number, else an Error naming `option` and the item.
std::vector<double> parse_number_list(const std::string& text, const std::string& option);

}  // namespace disranker::cli
