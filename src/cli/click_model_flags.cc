#include "cli/click_model_flags.h"

#include <algorithm>

#include "data/tsv.h"

namespace disranker::cli {

ClickModelOptions ClickModelFlags::resolve(const Qrels& qrels) const {
  ClickModelOptions options;
  options.kind = parse_click_model_kind(kind);
  options.eta = eta;
  options.epsilon = epsilon;
  options.gamma = gamma;
  if (!attractiveness.empty())
    options.attractiveness_by_grade = parse_number_list(attractiveness, "--attractiveness");
  if (!satisfaction.empty())
    options.satisfaction_by_grade = parse_number_list(satisfaction, "--satisfaction");
  // The grade scale: given, or implied by an explicit mapping, or the qrels' largest grade. A qrels file
  // whose grades are all 0 still needs a scale: grade 1 is then the (absent) top grade.
  if (max_grade > 0) {
    options.max_grade = max_grade;
  } else if (!options.attractiveness_by_grade.empty()) {
    options.max_grade = static_cast<int>(options.attractiveness_by_grade.size()) - 1;
  } else if (!options.satisfaction_by_grade.empty()) {
    options.max_grade = static_cast<int>(options.satisfaction_by_grade.size()) - 1;
  } else {
    options.max_grade = std::max(1, max_grade_in(qrels));
  }
  options.dwell_min_ms = dwell_min_ms;
  options.dwell_max_ms = dwell_max_ms;
  options.dwell_sigma = dwell_sigma;
  return options;
}

void add_click_model_flags(CLI::App* command, ClickModelFlags& flags, const std::string& kind_flag,
                           bool explicit_mappings) {
  command->add_option(kind_flag, flags.kind, "Click model")
      ->check(CLI::IsMember({"pbm", "cascade", "dbn"}))
      ->capture_default_str();
  command->add_option("--eta", flags.eta, "PBM position-bias exponent: exam(k) = (1/k)^eta")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--epsilon", flags.epsilon, "Attractiveness of a non-relevant result (click noise)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command->add_option("--gamma", flags.gamma, "DBN: probability of going on after an unsatisfying result")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command
      ->add_option(
          "--max-grade", flags.max_grade,
          "Grade of attractiveness 1 (default: the largest grade in the qrels; higher grades are clamped)")
      ->check(CLI::Range(1, 30));
  if (explicit_mappings) {
    command->add_option(
        "--attractiveness", flags.attractiveness,
        "Explicit click probability per grade 0..gmax, comma-separated (replaces the formula)");
    command->add_option("--satisfaction", flags.satisfaction,
                        "Cascade/DBN: explicit probability per grade 0..gmax that a click ends the search "
                        "(default: the attractiveness)");
  }
  command->add_option("--dwell-min-ms", flags.dwell_min_ms, "Median dwell of a grade-0 click (ms)")
      ->capture_default_str();
  command->add_option("--dwell-max-ms", flags.dwell_max_ms, "Median dwell of a top-grade click (ms)")
      ->capture_default_str();
  command
      ->add_option("--dwell-sigma", flags.dwell_sigma, "Log-normal spread of dwell (std. dev. of log dwell)")
      ->capture_default_str();
}

std::vector<double> parse_number_list(const std::string& text, const std::string& option) {
  std::vector<double> values;
  std::size_t begin = 0;
  for (std::size_t item = 1;; ++item) {
    const auto comma = text.find(',', begin);
    const std::string piece =
        text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    values.push_back(parse_double_field(piece, option, 0, "item " + std::to_string(item)));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return values;
}

}  // namespace disranker::cli
