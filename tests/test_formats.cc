// Specification of the data formats layer: queries, documents, qrels, runs and click logs, their readers and
// writers, the line reader and the atomic writer underneath them, and the shared data sets they must load.
//
// The rule: bad input is rejected with a disranker::Error whose message is "file:line: field: what is wrong";
// nothing is silently skipped; writers are atomic and refuse to write what the readers would reject.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "data/clicks.h"
#include "data/docs.h"
#include "data/qrels.h"
#include "data/queries.h"
#include "data/run.h"
#include "data/tsv.h"
#include "test_util.h"

namespace disranker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// -----------------------------------------------------------------------------------------------------------
// Helpers

// Runs `action`, which must throw a disranker::Error at file:line with the given field, whose message starts
// with "file:line: field: " (line and field omitted when 0 or empty) and contains `what`.
void expect_error_at(const std::function<void()>& action, const std::string& file, std::size_t line,
                     const std::string& field, const std::string& what) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), file) << e.what();
    EXPECT_EQ(e.line(), line) << e.what();
    EXPECT_EQ(e.field(), field) << e.what();
    std::string prefix = file;
    if (line > 0) prefix += ":" + std::to_string(line);
    prefix += ": ";
    if (!field.empty()) prefix += field + ": ";
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u)
        << "message does not start with '" << prefix << "': " << e.what();
    EXPECT_PRED_FORMAT2(::testing::IsSubstring, what, e.what());
    return;
  }
  ADD_FAILURE() << "expected a disranker::Error, but nothing was thrown";
}

#define EXPECT_ERROR_AT(statement, file, line, field, what)               \
  do {                                                                    \
    SCOPED_TRACE("while running: " #statement);                           \
    expect_error_at([&] { (void)(statement); }, file, line, field, what); \
  } while (0)

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The names of the entries of a directory (to check that no temporary file was left behind).
std::set<std::string> list_dir(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

std::uint64_t bits(double value) {
  return std::bit_cast<std::uint64_t>(value);
}

std::vector<std::pair<std::size_t, std::string>> lines_of(const std::string& path) {
  std::vector<std::pair<std::size_t, std::string>> lines;
  for_each_line(path, [&](std::size_t number, std::string_view line) { lines.emplace_back(number, line); });
  return lines;
}

const std::string kBadUtf8 = "caf\xE9";  // Latin-1 "café": byte 3 is invalid

// -----------------------------------------------------------------------------------------------------------
// Line reader

TEST(LineReader, NumbersLinesFromOneAndStripsNewlinesAndCarriageReturns) {
  TempDir dir;
  const auto path = dir.write("f.txt", "first\r\nsecond\nthird");
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {1, "first"}, {2, "second"}, {3, "third"}};
  EXPECT_EQ(lines_of(path), expected);
}

TEST(LineReader, KeepsCarriageReturnInsideALineAndEmptyLines) {
  TempDir dir;
  const auto path = dir.write("f.txt", "a\rb\n\n\r\nend\n");
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {1, "a\rb"}, {2, ""}, {3, ""}, {4, "end"}};
  EXPECT_EQ(lines_of(path), expected);
}

TEST(LineReader, EmptyFileHasNoLines) {
  TempDir dir;
  EXPECT_TRUE(lines_of(dir.write("f.txt", "")).empty());
}

TEST(LineReader, ReadsLinesLongerThanAnyBufferAndLinesAcrossBufferBoundaries) {
  TempDir dir;
  std::vector<std::pair<std::size_t, std::string>> expected;
  std::string content;
  for (std::size_t i = 1; i <= 300; ++i) {
    std::string line(i * 997 % 5003, static_cast<char>('a' + i % 26));
    if (i == 150) line.assign(300000, 'x');
    content += line + "\n";
    expected.emplace_back(i, line);
  }
  EXPECT_EQ(lines_of(dir.write("f.txt", content)), expected);
}

TEST(LineReader, RejectsMissingFileNamingIt) {
  TempDir dir;
  const auto path = (dir.path() / "absent.txt").string();
  EXPECT_ERROR_AT(lines_of(path), path, 0, "", "cannot open file for reading");
}

TEST(LineReader, RejectsDirectoryInsteadOfReadingItAsEmpty) {
  TempDir dir;
  const auto path = dir.path().string();
  EXPECT_ERROR_AT(lines_of(path), path, 0, "", "is a directory");
}

// -----------------------------------------------------------------------------------------------------------
// Number fields (shared by the qrels and run readers)

TEST(TsvNumberFormat, IntegerFieldAcceptsOnlyAPlainDecimalInteger) {
  EXPECT_EQ(parse_int_field("42", "f", 1, "grade"), 42);
  EXPECT_EQ(parse_int_field("-3", "f", 1, "grade"), -3);
  EXPECT_EQ(parse_int_field("0", "f", 1, "grade"), 0);
  for (const char* bad : {"", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "one", "1,000"}) {
    EXPECT_ERROR_AT(parse_int_field(bad, "f", 7, "grade"), "f", 7, "grade", "not an integer");
  }
}

TEST(TsvNumberFormat, IntegerFieldRejectsOverflow) {
  EXPECT_ERROR_AT(parse_int_field("99999999999999999999", "f", 2, "rank"), "f", 2, "rank", "out of range");
}

TEST(TsvNumberFormat, FloatFieldAcceptsDecimalAndScientificNotation) {
  EXPECT_EQ(parse_double_field("15.780599594116211", "f", 1, "score"), 15.780599594116211);
  EXPECT_EQ(parse_double_field("-1.5e-3", "f", 1, "score"), -1.5e-3);
  EXPECT_EQ(parse_double_field("7", "f", 1, "score"), 7.0);
  EXPECT_TRUE(std::signbit(parse_double_field("-0", "f", 1, "score")));
}

TEST(TsvNumberFormat, FloatFieldRejectsNanAndInfinities) {
  for (const char* bad : {"nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-INF"}) {
    EXPECT_ERROR_AT(parse_double_field(bad, "f", 3, "score"), "f", 3, "score", "not a finite number");
  }
}

TEST(TsvNumberFormat, FloatFieldRejectsValuesOutsideTheRangeOfADouble) {
  EXPECT_ERROR_AT(parse_double_field("1e400", "f", 3, "score"), "f", 3, "score", "out of the range");
  EXPECT_ERROR_AT(parse_double_field("-1e400", "f", 3, "score"), "f", 3, "score", "out of the range");
}

TEST(TsvNumberFormat, FloatFieldRejectsTextThatIsNotEntirelyANumber) {
  for (const char* bad : {"", "abc", "1,5", "1.5x", " 1.5", "1.5 ", "+1.5", "0x1p3"}) {
    EXPECT_ERROR_AT(parse_double_field(bad, "f", 4, "score"), "f", 4, "score", "not a number");
  }
}

// -----------------------------------------------------------------------------------------------------------
// Queries

TEST(QueriesReader, ReadsIdsAndTextsInFileOrder) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "q2\tsecond query\nq1\t\xE5\xA6\x82\xE4\xBD\x95 first\r\n");
  const auto queries = read_queries(path);
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries.items()[0].id, "q2");
  EXPECT_EQ(queries.items()[0].text, "second query");
  EXPECT_EQ(queries.items()[1].id, "q1");
  EXPECT_EQ(queries.items()[1].text, "\xE5\xA6\x82\xE4\xBD\x95 first");
  ASSERT_NE(queries.find("q1"), nullptr);
  EXPECT_EQ(queries.find("q1")->text, "\xE5\xA6\x82\xE4\xBD\x95 first");
  EXPECT_EQ(queries.find("q3"), nullptr);
}

TEST(QueriesReader, AcceptsLastLineWithoutNewline) {
  TempDir dir;
  EXPECT_EQ(read_queries(dir.write("queries.tsv", "1\ta\n2\tb")).size(), 2u);
}

TEST(QueriesReader, EmptyFileHasNoQueries) {
  TempDir dir;
  EXPECT_EQ(read_queries(dir.write("queries.tsv", "")).size(), 0u);
}

TEST(QueriesReader, RejectsLineWithOnlyOneColumn) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\tfine\n2 no tab here\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "query",
                  "expected 2 tab-separated columns (qid, query), found 1");
}

TEST(QueriesReader, RejectsLineWithThreeColumns) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\tfine\n2\tfine\n3\ta tab\tinside\n");
  EXPECT_ERROR_AT(read_queries(path), path, 3, "query", "found 3");
}

TEST(QueriesReader, RejectsEmptyLine) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n\n2\tb\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "", "empty line");
}

TEST(QueriesReader, RejectsTrailingBlankLine) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n2\tb\n\n");
  EXPECT_ERROR_AT(read_queries(path), path, 3, "", "empty line");
}

TEST(QueriesReader, RejectsEmptyQueryText) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n2\t\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "query", "empty query text");
}

TEST(QueriesReader, RejectsQueryTextOfOnlySpaces) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\t   \n");
  EXPECT_ERROR_AT(read_queries(path), path, 1, "query", "empty query text");
}

TEST(QueriesReader, RejectsEmptyQueryId) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n\tno id\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "qid", "empty id");
}

TEST(QueriesReader, RejectsQueryIdContainingWhitespace) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\nq 2\tb\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "qid", "id contains whitespace: 'q 2'");
}

TEST(QueriesReader, RejectsDuplicateQueryId) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n2\tb\n1\tc\n");
  EXPECT_ERROR_AT(read_queries(path), path, 3, "qid", "duplicate query id '1' (first on line 1)");
}

TEST(QueriesReader, RejectsInvalidUtf8InQueryText) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "1\ta\n2\t" + kBadUtf8 + "\n");
  EXPECT_ERROR_AT(read_queries(path), path, 2, "query", "invalid UTF-8 at byte 3 of the field");
}

TEST(QueriesReader, RejectsInvalidUtf8InQueryId) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "q\xC0\x80\ttext\n");
  EXPECT_ERROR_AT(read_queries(path), path, 1, "qid", "invalid UTF-8 at byte 1 of the field");
}

TEST(QueriesReader, RejectsByteOrderMarkThatWouldBecomePartOfTheFirstId) {
  TempDir dir;
  const auto path = dir.write("queries.tsv",
                              "\xEF\xBB\xBF"
                              "1\ta\n");
  EXPECT_ERROR_AT(read_queries(path), path, 1, "qid", "byte-order mark");
}

TEST(QueriesReader, RejectsMissingFile) {
  TempDir dir;
  const auto path = (dir.path() / "queries.tsv").string();
  EXPECT_ERROR_AT(read_queries(path), path, 0, "", "cannot open file for reading");
}

// -----------------------------------------------------------------------------------------------------------
// Documents

TEST(DocsReader, ReadsIdTitleAndTextAllowingAnEmptyTitleOrAnEmptyText) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tTitle\tSome text.\nd2\t\tpassage only\nd3\ttitle only\t\n");
  const auto docs = read_docs(path);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs.items()[0].id, "d1");
  EXPECT_EQ(docs.items()[0].title, "Title");
  EXPECT_EQ(docs.items()[0].text, "Some text.");
  ASSERT_NE(docs.find("d2"), nullptr);
  EXPECT_EQ(docs.find("d2")->title, "");
  EXPECT_EQ(docs.find("d2")->text, "passage only");
  EXPECT_EQ(docs.find("d3")->text, "");
  EXPECT_EQ(docs.find("d4"), nullptr);
}

TEST(DocsReader, RejectsDocumentWithNeitherTitleNorText) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\nd2\t\t\n");
  EXPECT_ERROR_AT(read_docs(path), path, 2, "text", "document 'd2' has neither a title nor a text");
}

TEST(DocsReader, RejectsDocumentWhoseTitleAndTextAreOnlySpaces) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\t  \t \n");
  EXPECT_ERROR_AT(read_docs(path), path, 1, "text", "neither a title nor a text");
}

TEST(DocsReader, RejectsLineWithTwoColumnsNamingTheMissingOne) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\nd2\tonly a title\n");
  EXPECT_ERROR_AT(read_docs(path), path, 2, "text",
                  "expected 3 tab-separated columns (docid, title, text), found 2");
}

TEST(DocsReader, RejectsLineWithOneColumnNamingTheTitle) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\n");
  EXPECT_ERROR_AT(read_docs(path), path, 1, "title", "found 1");
}

TEST(DocsReader, RejectsTabInsideTextAsFourColumns) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\nd2\tt\tx\nd3\tt\ttext with\ta tab\n");
  EXPECT_ERROR_AT(read_docs(path), path, 3, "text", "found 4");
}

TEST(DocsReader, RejectsEmptyDocid) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\n\tt\tx\n");
  EXPECT_ERROR_AT(read_docs(path), path, 2, "docid", "empty id");
}

TEST(DocsReader, RejectsDocidContainingWhitespace) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d 1\tt\tx\n");
  EXPECT_ERROR_AT(read_docs(path), path, 1, "docid", "id contains whitespace");
}

TEST(DocsReader, RejectsDuplicateDocid) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\nd2\tt\tx\nd1\tother\ty\n");
  EXPECT_ERROR_AT(read_docs(path), path, 3, "docid", "duplicate docid 'd1' (first on line 1)");
}

TEST(DocsReader, RejectsInvalidUtf8InTitle) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\t" + kBadUtf8 + "\tx\n");
  EXPECT_ERROR_AT(read_docs(path), path, 1, "title", "invalid UTF-8 at byte 3");
}

TEST(DocsReader, RejectsInvalidUtf8InText) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\nd2\tt\tok \xED\xA0\x80 surrogate\n");
  EXPECT_ERROR_AT(read_docs(path), path, 2, "text", "invalid UTF-8 at byte 3");
}

TEST(DocsReader, RejectsInvalidUtf8InDocid) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d\xFF\tt\tx\n");
  EXPECT_ERROR_AT(read_docs(path), path, 1, "docid", "invalid UTF-8 at byte 1");
}

TEST(DocsReader, RejectsEmptyLine) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "d1\tt\tx\n\nd2\tt\tx\n");
  EXPECT_ERROR_AT(read_docs(path), path, 2, "", "empty line");
}

TEST(DocsReader, RejectsMissingFile) {
  TempDir dir;
  const auto path = (dir.path() / "docs.tsv").string();
  EXPECT_ERROR_AT(read_docs(path), path, 0, "", "cannot open file for reading");
}

// -----------------------------------------------------------------------------------------------------------
// Qrels

TEST(QrelsReader, ReadsGradesByQueryAndDocument) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 2\nq1 0 d2 0\nq2 0 d1 -1\n");
  const auto qrels = read_qrels(path);
  EXPECT_EQ(qrels.by_query.size(), 2u);
  EXPECT_EQ(qrels.num_judgments(), 3u);
  ASSERT_NE(qrels.grade("q1", "d1"), nullptr);
  EXPECT_EQ(*qrels.grade("q1", "d1"), 2);
  EXPECT_EQ(*qrels.grade("q1", "d2"), 0);
  EXPECT_EQ(*qrels.grade("q2", "d1"), -1);
}

TEST(QrelsReader, UnjudgedDocumentHasNoGrade) {
  TempDir dir;
  const auto qrels = read_qrels(dir.write("qrels.txt", "q1 0 d1 2\n"));
  EXPECT_EQ(qrels.grade("q1", "d9"), nullptr);
  EXPECT_EQ(qrels.grade("q9", "d1"), nullptr);
}

TEST(QrelsReader, IgnoresIterationColumnAndAcceptsTabsAndRepeatedSpaces) {
  TempDir dir;
  const auto qrels = read_qrels(dir.write("qrels.txt", "q1\tQ0\td1\t3\r\n  q1   7 d2  1  \n"));
  EXPECT_EQ(*qrels.grade("q1", "d1"), 3);
  EXPECT_EQ(*qrels.grade("q1", "d2"), 1);
}

TEST(QrelsReader, EmptyFileIsAnEmptyQrels) {
  TempDir dir;
  const auto qrels = read_qrels(dir.write("qrels.txt", ""));
  EXPECT_TRUE(qrels.by_query.empty());
  EXPECT_EQ(qrels.num_judgments(), 0u);
}

TEST(QrelsReader, AllowsTheSameDocumentUnderDifferentQueries) {
  TempDir dir;
  EXPECT_EQ(read_qrels(dir.write("qrels.txt", "q1 0 d1 1\nq2 0 d1 0\n")).num_judgments(), 2u);
}

TEST(QrelsReader, RejectsLineWithThreeColumns) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1\nq1 d2 1\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 2, "grade",
                  "expected 4 whitespace-separated columns (qid, iteration, docid, grade), found 3");
}

TEST(QrelsReader, RejectsLineWithFiveColumns) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1 extra\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 1, "grade", "found 5");
}

TEST(QrelsReader, RejectsNonIntegerGrade) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1\nq1 0 d2 1.5\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 2, "grade", "not an integer: '1.5'");
  const auto word = dir.write("qrels2.txt", "q1 0 d1 high\n");
  EXPECT_ERROR_AT(read_qrels(word), word, 1, "grade", "not an integer: 'high'");
}

TEST(QrelsReader, RejectsGradeOutOfRange) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1001\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 1, "grade", "out of range");
}

TEST(QrelsReader, RejectsDuplicateJudgmentOfTheSameDocumentForTheSameQuery) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1\nq1 0 d2 0\nq1 0 d1 1\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 3, "docid", "duplicate judgment for query 'q1', doc 'd1'");
}

TEST(QrelsReader, RejectsBlankLine) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d1 1\n   \nq1 0 d2 0\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 2, "", "empty line");
}

TEST(QrelsReader, RejectsInvalidUtf8InDocid) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "q1 0 d\x80 1\n");
  EXPECT_ERROR_AT(read_qrels(path), path, 1, "docid", "invalid UTF-8");
}

TEST(QrelsReader, RejectsMissingFile) {
  TempDir dir;
  const auto path = (dir.path() / "qrels.txt").string();
  EXPECT_ERROR_AT(read_qrels(path), path, 0, "", "cannot open file for reading");
}

// -----------------------------------------------------------------------------------------------------------
// Runs

TEST(RunReader, OrdersEachQueryByScoreDescendingIgnoringTheRankColumn) {
  TempDir dir;
  const auto path = dir.write("run.txt",
                              "q1 Q0 low 1 0.5 tag\n"
                              "q1 Q0 high 2 2.5 tag\n"
                              "q1 Q0 mid 3 1.5 tag\n"
                              "q2 Q0 only 1 -3 tag\n");
  const auto run = read_run(path);
  ASSERT_EQ(run.by_query.size(), 2u);
  const auto& q1 = run.by_query.at("q1");
  ASSERT_EQ(q1.size(), 3u);
  EXPECT_EQ(q1[0].docid, "high");
  EXPECT_EQ(q1[1].docid, "mid");
  EXPECT_EQ(q1[2].docid, "low");
  EXPECT_EQ(q1[0].score, 2.5);
  EXPECT_EQ(run.by_query.at("q2")[0].score, -3.0);
  EXPECT_EQ(run.num_entries(), 4u);
}

TEST(RunReader, BreaksScoreTiesByDocidDescendingAsTrecEvalDoes) {
  TempDir dir;
  const auto path =
      dir.write("run.txt", "q1 Q0 a 1 1.0 t\nq1 Q0 c 2 1.0 t\nq1 Q0 b 3 1.0 t\nq1 Q0 z 4 0.5 t\n");
  const auto run = read_run(path);
  const auto& q1 = run.by_query.at("q1");
  ASSERT_EQ(q1.size(), 4u);
  EXPECT_EQ(q1[0].docid, "c");
  EXPECT_EQ(q1[1].docid, "b");
  EXPECT_EQ(q1[2].docid, "a");
  EXPECT_EQ(q1[3].docid, "z");
}

TEST(RunReader, KeepsTheFirstTagOfARunWithMixedTags) {
  TempDir dir;
  const auto run = read_run(dir.write("run.txt", "q1 Q0 a 1 1 first\nq1 Q0 b 2 0 second\n"));
  EXPECT_EQ(run.tag, "first");
}

TEST(RunReader, EmptyFileIsAnEmptyRun) {
  TempDir dir;
  EXPECT_EQ(read_run(dir.write("run.txt", "")).num_entries(), 0u);
}

TEST(RunReader, AllowsTheSameDocumentForDifferentQueries) {
  TempDir dir;
  EXPECT_EQ(read_run(dir.write("run.txt", "q1 Q0 d 1 1 t\nq2 Q0 d 1 1 t\n")).num_entries(), 2u);
}

TEST(RunReader, RejectsLineWithFiveColumns) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 0.5\n");
  EXPECT_ERROR_AT(read_run(path), path, 2, "tag",
                  "expected 6 whitespace-separated columns (qid, Q0, docid, rank, score, tag), found 5");
}

TEST(RunReader, RejectsLineWithSevenColumns) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1.0 t extra\n");
  EXPECT_ERROR_AT(read_run(path), path, 1, "tag", "found 7");
}

TEST(RunReader, RejectsNonIntegerRank) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2.0 0.5 t\n");
  EXPECT_ERROR_AT(read_run(path), path, 2, "rank", "not an integer: '2.0'");
}

TEST(RunReader, RejectsNonNumericScore) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 high t\n");
  EXPECT_ERROR_AT(read_run(path), path, 2, "score", "not a number: 'high'");
}

TEST(RunReader, RejectsNanScore) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 1.0 t\nq1 Q0 d3 3 nan t\n");
  EXPECT_ERROR_AT(read_run(path), path, 3, "score", "not a finite number: 'nan'");
}

TEST(RunReader, RejectsInfiniteScores) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 inf t\n");
  EXPECT_ERROR_AT(read_run(path), path, 1, "score", "not a finite number: 'inf'");
  const auto negative = dir.write("run2.txt", "q1 Q0 d1 1 1 t\nq1 Q0 d2 2 -inf t\n");
  EXPECT_ERROR_AT(read_run(negative), negative, 2, "score", "not a finite number: '-inf'");
}

TEST(RunReader, RejectsScoreThatOverflowsADouble) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 1e999 t\n");
  EXPECT_ERROR_AT(read_run(path), path, 1, "score", "out of the range of a double");
}

TEST(RunReader, RejectsDuplicateDocumentForSameQuery) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 3 t\nq1 Q0 d2 2 2 t\nq2 Q0 d1 1 1 t\nq1 Q0 d1 3 1 t\n");
  EXPECT_ERROR_AT(read_run(path), path, 4, "docid", "duplicate document 'd1' for query 'q1'");
}

TEST(RunReader, RejectsEmptyLine) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 3 t\n\n");
  EXPECT_ERROR_AT(read_run(path), path, 2, "", "empty line");
}

TEST(RunReader, RejectsInvalidUtf8InTag) {
  TempDir dir;
  const auto path = dir.write("run.txt", "q1 Q0 d1 1 3 t\xC3\n");
  EXPECT_ERROR_AT(read_run(path), path, 1, "tag", "invalid UTF-8");
}

TEST(RunReader, RejectsMissingFile) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  EXPECT_ERROR_AT(read_run(path), path, 0, "", "cannot open file for reading");
}

TEST(RunFormat, RanksBeforeComparesScoreThenDocidDescending) {
  EXPECT_TRUE(ranks_before(RunEntry{"a", 2.0}, RunEntry{"z", 1.0}));
  EXPECT_FALSE(ranks_before(RunEntry{"z", 1.0}, RunEntry{"a", 2.0}));
  EXPECT_TRUE(ranks_before(RunEntry{"b", 1.0}, RunEntry{"a", 1.0}));
  EXPECT_FALSE(ranks_before(RunEntry{"a", 1.0}, RunEntry{"b", 1.0}));
  EXPECT_FALSE(ranks_before(RunEntry{"a", 1.0}, RunEntry{"a", 1.0}));
  // strcmp order: "10" < "9", so "9" ranks first on a tie.
  EXPECT_TRUE(ranks_before(RunEntry{"9", 0.0}, RunEntry{"10", 0.0}));
}

// -----------------------------------------------------------------------------------------------------------
// Click logs

const std::string kGoodImpression =
    R"({"qid": "q1", "query": "cheap flights", "results": [)"
    R"({"docid": "d1", "title": "T1", "summary": "S1", "position": 1, "clicked": true, "dwell_ms": 5300}, )"
    R"({"docid": "d2", "position": 2, "clicked": false}]})";

// An impression with one result whose JSON members (without braces) are `result_members`.
std::string impression_with_result(const std::string& result_members) {
  return R"({"qid": "q1", "query": "q", "results": [{)" + result_members + "}]}";
}

TEST(ClickLogReader, ReadsImpressionsWithTheirResults) {
  TempDir dir;
  const auto path = dir.write("clicks.jsonl",
                              kGoodImpression + "\n" +
                                  R"({"qid": "q2", "query": "x", "session": "s9", "user": "u3", "results": [)"
                                  R"({"docid": "d3", "position": 4, "clicked": true}]})" +
                                  "\n");
  const auto log = read_click_log(path);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].qid, "q1");
  EXPECT_EQ(log[0].query, "cheap flights");
  EXPECT_EQ(log[0].session, "");
  ASSERT_EQ(log[0].results.size(), 2u);
  EXPECT_EQ(log[0].results[0].docid, "d1");
  EXPECT_EQ(log[0].results[0].title, "T1");
  EXPECT_EQ(log[0].results[0].summary, "S1");
  EXPECT_EQ(log[0].results[0].position, 1);
  EXPECT_TRUE(log[0].results[0].clicked);
  EXPECT_EQ(log[0].results[0].dwell_ms, 5300.0);
  EXPECT_EQ(log[0].results[1].title, "");
  EXPECT_FALSE(log[0].results[1].clicked);
  EXPECT_EQ(log[1].session, "s9");
  EXPECT_EQ(log[1].user, "u3");
  EXPECT_EQ(log[1].results[0].position, 4);
}

TEST(ClickLogReader, DwellDefaultsToZeroWhenAbsent) {
  TempDir dir;
  const auto log = read_click_log(
      dir.write("c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": true)")));
  EXPECT_EQ(log.at(0).results.at(0).dwell_ms, 0.0);
}

TEST(ClickLogReader, EmptyFileHasNoImpressions) {
  TempDir dir;
  EXPECT_TRUE(read_click_log(dir.write("c.jsonl", "")).empty());
}

TEST(ClickLogReader, RejectsMalformedJson) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", kGoodImpression + "\n" + R"({"qid": "q1", "query": )" + "\n");
  EXPECT_ERROR_AT(read_click_log(path), path, 2, "", "malformed JSON");
}

TEST(ClickLogReader, RejectsTrailingGarbageAfterTheObject) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", kGoodImpression + " {}\n");
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "", "malformed JSON");
}

TEST(ClickLogReader, RejectsNanLiteral) {
  TempDir dir;
  const auto path = dir.write(
      "c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": true, "dwell_ms": NaN)"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "", "malformed JSON");
}

TEST(ClickLogReader, RejectsLineThatIsNotAnObject) {
  TempDir dir;
  const auto array = dir.write("a.jsonl", kGoodImpression + "\n[1, 2]\n");
  EXPECT_ERROR_AT(read_click_log(array), array, 2, "", "expected a JSON object per line, got array");
  const auto text = dir.write("s.jsonl", "\"just a string\"\n");
  EXPECT_ERROR_AT(read_click_log(text), text, 1, "", "expected a JSON object per line, got string");
}

TEST(ClickLogReader, RejectsEmptyLine) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", kGoodImpression + "\n\n" + kGoodImpression + "\n");
  EXPECT_ERROR_AT(read_click_log(path), path, 2, "", "empty line");
}

TEST(ClickLogReader, RejectsMissingTopLevelField) {
  TempDir dir;
  const auto no_qid =
      dir.write("a.jsonl", R"({"query": "q", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(no_qid), no_qid, 1, "qid", "missing field");
  const auto no_query =
      dir.write("b.jsonl", R"({"qid": "1", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(no_query), no_query, 1, "query", "missing field");
  const auto no_results = dir.write("c.jsonl", R"({"qid": "1", "query": "q"})");
  EXPECT_ERROR_AT(read_click_log(no_results), no_results, 1, "results", "missing field");
}

TEST(ClickLogReader, RejectsMissingResultField) {
  TempDir dir;
  const auto no_docid = dir.write("a.jsonl", impression_with_result(R"("position": 1, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(no_docid), no_docid, 1, "results[0].docid", "missing field");
  const auto no_position = dir.write("b.jsonl", impression_with_result(R"("docid": "d", "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(no_position), no_position, 1, "results[0].position", "missing field");
  const auto no_clicked = dir.write("c.jsonl", impression_with_result(R"("docid": "d", "position": 1)"));
  EXPECT_ERROR_AT(read_click_log(no_clicked), no_clicked, 1, "results[0].clicked", "missing field");
}

TEST(ClickLogReader, RejectsClickedGivenAsAString) {
  TempDir dir;
  const auto path =
      dir.write("c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": "yes")"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].clicked", "expected true or false, got \"yes\"");
}

TEST(ClickLogReader, RejectsIdsAndTextsOfTheWrongType) {
  TempDir dir;
  const auto numeric_qid = dir.write(
      "a.jsonl", R"({"qid": 7, "query": "q", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(numeric_qid), numeric_qid, 1, "qid", "expected a string, got number");
  const auto null_title = dir.write(
      "b.jsonl", impression_with_result(R"("docid": "d", "title": null, "position": 1, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(null_title), null_title, 1, "results[0].title",
                  "expected a string, got null");
  const auto results_object = dir.write("c.jsonl", R"({"qid": "1", "query": "q", "results": {}})");
  EXPECT_ERROR_AT(read_click_log(results_object), results_object, 1, "results", "expected a non-empty array");
  const auto result_string = dir.write("d.jsonl", R"({"qid": "1", "query": "q", "results": ["d1"]})");
  EXPECT_ERROR_AT(read_click_log(result_string), result_string, 1, "results[0]", "expected an object");
}

TEST(ClickLogReader, RejectsPositionZero) {
  TempDir dir;
  const auto path =
      dir.write("c.jsonl", impression_with_result(R"("docid": "d", "position": 0, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].position",
                  "expected an integer from 1 to 100000, got 0");
}

TEST(ClickLogReader, RejectsNonIntegerPosition) {
  TempDir dir;
  const auto fractional =
      dir.write("a.jsonl", impression_with_result(R"("docid": "d", "position": 1.5, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(fractional), fractional, 1, "results[0].position", "expected an integer");
  const auto text =
      dir.write("b.jsonl", impression_with_result(R"("docid": "d", "position": "1", "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(text), text, 1, "results[0].position", "expected an integer");
}

TEST(ClickLogReader, RejectsDuplicatePositionInAnImpression) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", R"({"qid": "q", "query": "q", "results": [)"
                                         R"({"docid": "a", "position": 1, "clicked": false}, )"
                                         R"({"docid": "b", "position": 2, "clicked": false}, )"
                                         R"({"docid": "c", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[2].position", "position 1 appears twice");
}

TEST(ClickLogReader, RejectsDuplicateDocidInAnImpression) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", kGoodImpression + "\n" +
                                             R"({"qid": "q", "query": "q", "results": [)"
                                             R"({"docid": "a", "position": 1, "clicked": false}, )"
                                             R"({"docid": "a", "position": 2, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(path), path, 2, "results[1].docid", "document 'a' appears twice");
}

TEST(ClickLogReader, RejectsNegativeDwell) {
  TempDir dir;
  const auto path = dir.write(
      "c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": true, "dwell_ms": -5)"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].dwell_ms", "expected a non-negative number");
}

TEST(ClickLogReader, RejectsDwellThatOverflowsToInfinity) {
  TempDir dir;
  const auto path =
      dir.write("c.jsonl",
                impression_with_result(R"("docid": "d", "position": 1, "clicked": true, "dwell_ms": 1e999)"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].dwell_ms", "number out of range");
}

TEST(ClickLogReader, RejectsDwellGivenAsText) {
  TempDir dir;
  const auto path =
      dir.write("c.jsonl",
                impression_with_result(R"("docid": "d", "position": 1, "clicked": true, "dwell_ms": "NaN")"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].dwell_ms",
                  "expected a non-negative number, got \"NaN\"");
}

TEST(ClickLogReader, RejectsDwellOnUnclickedResult) {
  TempDir dir;
  const auto path = dir.write(
      "c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": false, "dwell_ms": 20)"));
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results[0].dwell_ms",
                  "dwell time on a result that was not clicked");
}

TEST(ClickLogReader, AcceptsZeroDwellOnUnclickedResult) {
  TempDir dir;
  const auto path = dir.write(
      "c.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": false, "dwell_ms": 0)"));
  EXPECT_EQ(read_click_log(path).size(), 1u);
}

TEST(ClickLogReader, RejectsEmptyResults) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", R"({"qid": "q", "query": "q", "results": []})");
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "results", "expected a non-empty array");
}

TEST(ClickLogReader, RejectsEmptyQueryText) {
  TempDir dir;
  const auto path =
      dir.write("c.jsonl",
                R"({"qid": "q", "query": " ", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "query", "empty query text");
}

TEST(ClickLogReader, RejectsEmptyOrSpacedIds) {
  TempDir dir;
  const auto empty_qid = dir.write(
      "a.jsonl", R"({"qid": "", "query": "q", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(empty_qid), empty_qid, 1, "qid", "empty id");
  const auto spaced_docid =
      dir.write("b.jsonl", impression_with_result(R"("docid": "d 1", "position": 1, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(spaced_docid), spaced_docid, 1, "results[0].docid",
                  "id contains whitespace");
}

TEST(ClickLogReader, RejectsUnknownFieldsRatherThanIgnoringThem) {
  TempDir dir;
  const auto top = dir.write(
      "a.jsonl",
      R"({"qid": "q", "query": "q", "qurey": "typo", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(top), top, 1, "qurey", "unknown field");
  const auto inner = dir.write(
      "b.jsonl", impression_with_result(R"("docid": "d", "position": 1, "clicked": true, "dwell": 5)"));
  EXPECT_ERROR_AT(read_click_log(inner), inner, 1, "results[0].dwell", "unknown field");
}

TEST(ClickLogReader, RejectsAKeyThatAppearsTwiceInOneObject) {
  TempDir dir;
  const auto top = dir.write(
      "a.jsonl",
      R"({"qid": "q1", "qid": "q2", "query": "q", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(top), top, 1, "qid", "key appears twice");
  const auto inner = dir.write(
      "b.jsonl", R"({"qid": "q", "query": "q", "results": [{"docid": "a", "position": 1, "clicked": true}, )"
                 R"({"docid": "b", "position": 2, "clicked": true, "clicked": false}]})");
  EXPECT_ERROR_AT(read_click_log(inner), inner, 1, "results[1].clicked", "key appears twice");
}

TEST(ClickLogReader, RejectsInvalidUtf8InQueryNamingTheField) {
  TempDir dir;
  const auto line = R"({"qid": "q", "query": ")" + kBadUtf8 +
                    R"(", "results": [{"docid": "d", "position": 1, "clicked": true}]})";
  const auto path = dir.write("c.jsonl", kGoodImpression + "\n" + line + "\n");
  EXPECT_ERROR_AT(read_click_log(path), path, 2, "query", "invalid UTF-8 at byte 26 of the line");
}

TEST(ClickLogReader, RejectsInvalidUtf8InResultTitleAndSummaryNamingTheField) {
  TempDir dir;
  const auto title = dir.write(
      "a.jsonl", R"({"qid": "q", "query": "q", "results": [{"docid": "a", "position": 1, "clicked": true}, )"
                 R"({"docid": "b", "title": ")" +
                     kBadUtf8 + R"(", "position": 2, "clicked": false}]})");
  EXPECT_ERROR_AT(read_click_log(title), title, 1, "results[1].title", "invalid UTF-8");
  const auto summary = dir.write(
      "b.jsonl", impression_with_result(R"("docid": "d", "summary": "ok )" + std::string("\xED\xA0\x80") +
                                        R"(", "position": 1, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(summary), summary, 1, "results[0].summary", "invalid UTF-8");
}

TEST(ClickLogReader, RejectsInvalidUtf8InIdsNamingTheField) {
  TempDir dir;
  const auto qid = dir.write(
      "a.jsonl", R"({"qid": "q)" + std::string("\xFF") +
                     R"(", "query": "q", "results": [{"docid": "d", "position": 1, "clicked": true}]})");
  EXPECT_ERROR_AT(read_click_log(qid), qid, 1, "qid", "invalid UTF-8");
  const auto docid = dir.write("b.jsonl", impression_with_result(R"("docid": "d)" + std::string("\xC0\x80") +
                                                                 R"(", "position": 1, "clicked": true)"));
  EXPECT_ERROR_AT(read_click_log(docid), docid, 1, "results[0].docid", "invalid UTF-8");
}

TEST(ClickLogReader, RejectsInvalidUtf8OutsideAnyString) {
  TempDir dir;
  const auto path = dir.write("c.jsonl", "{\xFF}\n");
  EXPECT_ERROR_AT(read_click_log(path), path, 1, "", "invalid UTF-8 at byte 1 of the line");
}

TEST(ClickLogReader, RejectsMissingFile) {
  TempDir dir;
  const auto path = (dir.path() / "clicks.jsonl").string();
  EXPECT_ERROR_AT(read_click_log(path), path, 0, "", "cannot open file for reading");
}

// -----------------------------------------------------------------------------------------------------------
// Atomic writer

TEST(AtomicWriter, ReplacesTheFileWhenTheCallbackSucceeds) {
  TempDir dir;
  const auto path = dir.write("out.txt", "old\n");
  write_file_atomically(path, [](std::ostream& out) { out << "new\n"; });
  EXPECT_EQ(read_text(path), "new\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"out.txt"});
}

TEST(AtomicWriter, WritesATemporaryFileBesideTheTargetWhileTheOldContentStaysVisible) {
  TempDir dir;
  const auto path = dir.write("out.txt", "old\n");
  std::set<std::string> during;
  std::string visible;
  write_file_atomically(path, [&](std::ostream& out) {
    out << "new\n";
    during = list_dir(dir.path());
    visible = read_text(path);
  });
  ASSERT_EQ(during.size(), 2u);
  EXPECT_EQ(during.begin()->rfind("out.txt.tmp.", 0), std::string::npos);  // "out.txt" sorts first
  EXPECT_EQ(std::next(during.begin())->rfind("out.txt.tmp.", 0), 0u);
  EXPECT_EQ(visible, "old\n");
}

TEST(AtomicWriter, KeepsThePreviousContentAndNoTemporaryFileWhenTheCallbackThrows) {
  TempDir dir;
  const auto path = dir.write("out.txt", "old content\n");
  EXPECT_THROW(write_file_atomically(path,
                                     [](std::ostream& out) {
                                       out << "half of the new content";
                                       throw std::runtime_error("callback failed");
                                     }),
               std::runtime_error);
  EXPECT_EQ(read_text(path), "old content\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"out.txt"});
}

TEST(AtomicWriter, CreatesNothingWhenTheCallbackThrowsForANewFile) {
  TempDir dir;
  const auto path = (dir.path() / "new.txt").string();
  EXPECT_THROW(write_file_atomically(path, [](std::ostream&) { throw Error("nope"); }), Error);
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

TEST(AtomicWriter, RejectsMissingDirectoryNamingThePath) {
  TempDir dir;
  const auto path = (dir.path() / "no-such-dir" / "out.txt").string();
  EXPECT_ERROR_AT(write_file_atomically(path, [](std::ostream& out) { out << "x"; }), path, 0, "",
                  "no-such-dir' does not exist");
  EXPECT_TRUE(list_dir(dir.path()).empty());
}

TEST(AtomicWriter, RejectsTargetThatIsADirectoryAndLeavesNoTemporaryFile) {
  TempDir dir;
  fs::create_directory(dir.path() / "sub");
  const auto path = (dir.path() / "sub").string();
  EXPECT_ERROR_AT(write_file_atomically(path, [](std::ostream& out) { out << "x"; }), path, 0, "",
                  "cannot rename temporary file into place");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"sub"});
}

TEST(AtomicWriter, EveryWriterRejectsAMissingDirectoryNamingThePath) {
  TempDir dir;
  const auto path = (dir.path() / "missing" / "file").string();
  Queries queries;
  queries.add({"q", "text"});
  Docs docs;
  docs.add({"d", "t", "x"});
  Qrels qrels;
  qrels.by_query["q"]["d"] = 1;
  disranker::Run run;
  run.by_query["q"].push_back({"d", 1.0});
  const std::vector<Impression> log = {{"q", "text", "", "", {{"d", "", "", 1, true, 0}}}};
  EXPECT_ERROR_AT(write_queries(path, queries), path, 0, "", "does not exist");
  EXPECT_ERROR_AT(write_docs(path, docs), path, 0, "", "does not exist");
  EXPECT_ERROR_AT(write_qrels(path, qrels), path, 0, "", "does not exist");
  EXPECT_ERROR_AT(write_run(path, run), path, 0, "", "does not exist");
  EXPECT_ERROR_AT(write_click_log(path, log), path, 0, "", "does not exist");
}

// -----------------------------------------------------------------------------------------------------------
// Writers refuse what the readers would reject, and leave the old file untouched when they do

TEST(QueriesWriter, RejectsTabOrNewlineInQueryTextAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = dir.write("queries.tsv", "old\tcontent\n");
  for (const std::string text : {"a\tb", "a\nb", "a\rb"}) {
    Queries queries;
    queries.add({"q1", text});
    EXPECT_ERROR_AT(write_queries(path, queries), path, 0, "query", "contains a tab or newline");
  }
  EXPECT_EQ(read_text(path), "old\tcontent\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"queries.tsv"});
}

TEST(QueriesWriter, RejectsIdThatIsEmptyOrHoldsWhitespace) {
  TempDir dir;
  const auto path = (dir.path() / "queries.tsv").string();
  for (const std::string id : {"", "q 1", "q\t1", "q1\n"}) {
    Queries queries;
    queries.add({id, "text"});
    EXPECT_ERROR_AT(write_queries(path, queries), path, 0, "qid", "id");
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(QueriesWriter, RejectsEmptyQueryText) {
  TempDir dir;
  const auto path = (dir.path() / "queries.tsv").string();
  Queries queries;
  queries.add({"q1", " "});
  EXPECT_ERROR_AT(write_queries(path, queries), path, 0, "query", "empty query text for query 'q1'");
}

TEST(QueriesWriter, RejectsInvalidUtf8) {
  TempDir dir;
  const auto path = (dir.path() / "queries.tsv").string();
  Queries queries;
  queries.add({"q1", kBadUtf8});
  EXPECT_ERROR_AT(write_queries(path, queries), path, 0, "query", "invalid UTF-8 at byte 3");
}

TEST(DocsWriter, RejectsTabOrNewlineInTitleOrTextAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = dir.write("docs.tsv", "old\tt\tx\n");
  Docs tab_in_title;
  tab_in_title.add({"d1", "a\tb", "x"});
  EXPECT_ERROR_AT(write_docs(path, tab_in_title), path, 0, "title", "contains a tab or newline");
  Docs newline_in_text;
  newline_in_text.add({"d1", "t", "line one\nline two"});
  EXPECT_ERROR_AT(write_docs(path, newline_in_text), path, 0, "text", "contains a tab or newline");
  EXPECT_EQ(read_text(path), "old\tt\tx\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"docs.tsv"});
}

TEST(DocsWriter, RejectsDocidWithWhitespaceAndDocumentWithNeitherTitleNorText) {
  TempDir dir;
  const auto path = (dir.path() / "docs.tsv").string();
  Docs spaced;
  spaced.add({"d 1", "t", "x"});
  EXPECT_ERROR_AT(write_docs(path, spaced), path, 0, "docid", "id contains whitespace");
  Docs empty;
  empty.add({"d1", "", ""});
  EXPECT_ERROR_AT(write_docs(path, empty), path, 0, "text", "document 'd1' has neither a title nor a text");
  EXPECT_FALSE(fs::exists(path));
}

TEST(FormatContainers, DocsAndQueriesRejectAddingADuplicateId) {
  Docs docs;
  docs.add({"d1", "t", "x"});
  EXPECT_THROW(docs.add({"d1", "t2", "x2"}), Error);
  Queries queries;
  queries.add({"q1", "a"});
  EXPECT_THROW(queries.add({"q1", "b"}), Error);
}

TEST(QrelsWriter, RejectsIdsContainingWhitespaceOrEmptyAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = dir.write("qrels.txt", "old 0 d 1\n");
  Qrels spaced_docid;
  spaced_docid.by_query["q1"]["d 1"] = 1;
  EXPECT_ERROR_AT(write_qrels(path, spaced_docid), path, 0, "docid", "id contains whitespace");
  Qrels tabbed_qid;
  tabbed_qid.by_query["q\t1"]["d1"] = 1;
  EXPECT_ERROR_AT(write_qrels(path, tabbed_qid), path, 0, "qid", "id contains whitespace");
  Qrels empty_docid;
  empty_docid.by_query["q1"][""] = 1;
  EXPECT_ERROR_AT(write_qrels(path, empty_docid), path, 0, "docid", "empty id");
  EXPECT_EQ(read_text(path), "old 0 d 1\n");
}

TEST(QrelsWriter, RejectsGradeTheReaderWouldReject) {
  TempDir dir;
  const auto path = (dir.path() / "qrels.txt").string();
  Qrels qrels;
  qrels.by_query["q1"]["d1"] = 5000;
  EXPECT_ERROR_AT(write_qrels(path, qrels), path, 0, "grade", "out of range");
}

TEST(RunWriter, RejectsIdsContainingWhitespaceAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = dir.write("run.txt", "old Q0 d 1 1 t\n");
  disranker::Run spaced_docid;
  spaced_docid.by_query["q1"].push_back({"d 1", 1.0});
  EXPECT_ERROR_AT(write_run(path, spaced_docid), path, 0, "docid", "id contains whitespace");
  disranker::Run newline_qid;
  newline_qid.by_query["q\n1"].push_back({"d1", 1.0});
  EXPECT_ERROR_AT(write_run(path, newline_qid), path, 0, "qid", "id contains whitespace");
  disranker::Run empty_docid;
  empty_docid.by_query["q1"].push_back({"", 1.0});
  EXPECT_ERROR_AT(write_run(path, empty_docid), path, 0, "docid", "empty id");
  EXPECT_EQ(read_text(path), "old Q0 d 1 1 t\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"run.txt"});
}

TEST(RunWriter, RejectsTagThatIsEmptyOrHoldsWhitespace) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  for (const std::string tag : {"", "my run", "my\trun"}) {
    disranker::Run run;
    run.tag = tag;
    run.by_query["q1"].push_back({"d1", 1.0});
    EXPECT_ERROR_AT(write_run(path, run), path, 0, "tag", "id");
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(RunWriter, RejectsNanAndInfiniteScores) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  for (double score : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity()}) {
    disranker::Run run;
    run.by_query["q1"].push_back({"d1", 1.0});
    run.by_query["q1"].push_back({"d2", score});
    EXPECT_ERROR_AT(write_run(path, run), path, 0, "score", "not a finite number for query 'q1', doc 'd2'");
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(RunWriter, RejectsDuplicateDocumentForSameQuery) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  disranker::Run run;
  run.by_query["q1"].push_back({"d1", 1.0});
  run.by_query["q1"].push_back({"d1", 0.5});
  EXPECT_ERROR_AT(write_run(path, run), path, 0, "docid", "duplicate document 'd1' for query 'q1'");
}

TEST(RunWriter, WritesRanksOneToNInTrecEvalOrderWithTheRunTag) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  disranker::Run run;
  run.tag = "mine";
  run.by_query["q2"] = {{"x", 0.0}};
  run.by_query["q1"] = {{"a", 1.0}, {"c", 3.0}, {"b", 1.0}, {"d", -1.0}};
  write_run(path, run);
  EXPECT_EQ(read_text(path),
            "q1 Q0 c 1 3 mine\n"
            "q1 Q0 b 2 1 mine\n"
            "q1 Q0 a 3 1 mine\n"
            "q1 Q0 d 4 -1 mine\n"
            "q2 Q0 x 1 0 mine\n");
}

TEST(ClickLogWriter, RejectsInvalidUtf8NamingTheFileAndFieldAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = dir.write("clicks.jsonl", "old\n");
  const std::vector<Impression> log = {
      {"q1", "fine", "", "", {{"d1", "", "", 1, true, 0}}},
      {"q2", "fine", "", "", {{"d1", "ok", "", 1, false, 0}, {"d2", kBadUtf8, "", 2, true, 10}}}};
  EXPECT_ERROR_AT(write_click_log(path, log), path, 0, "impressions[1].results[1].title",
                  "invalid UTF-8 at byte 3");
  EXPECT_EQ(read_text(path), "old\n");
  EXPECT_EQ(list_dir(dir.path()), std::set<std::string>{"clicks.jsonl"});
}

TEST(ClickLogWriter, RejectsNanDwellWhichJsonWouldWriteAsNull) {
  TempDir dir;
  const auto path = (dir.path() / "clicks.jsonl").string();
  const std::vector<Impression> log = {
      {"q1", "text", "", "", {{"d1", "", "", 1, true, std::numeric_limits<double>::quiet_NaN()}}}};
  EXPECT_ERROR_AT(write_click_log(path, log), path, 0, "impressions[0].results[0].dwell_ms",
                  "expected a non-negative number");
  EXPECT_FALSE(fs::exists(path));
}

TEST(ClickLogWriter, RejectsWhatTheReaderWouldReject) {
  TempDir dir;
  const auto path = (dir.path() / "clicks.jsonl").string();
  auto one = [](ClickResult r) { return std::vector<Impression>{{"q1", "text", "", "", {std::move(r)}}}; };
  EXPECT_ERROR_AT(write_click_log(path, one({"d1", "", "", 0, true, 0})), path, 0,
                  "impressions[0].results[0].position", "expected an integer from 1 to 100000");
  EXPECT_ERROR_AT(write_click_log(path, one({"d1", "", "", 1, false, 5})), path, 0,
                  "impressions[0].results[0].dwell_ms", "dwell time on a result that was not clicked");
  EXPECT_ERROR_AT(write_click_log(path, one({"d1", "", "", 1, true, -1})), path, 0,
                  "impressions[0].results[0].dwell_ms", "expected a non-negative number");
  EXPECT_ERROR_AT(write_click_log(path, one({"d 1", "", "", 1, true, 0})), path, 0,
                  "impressions[0].results[0].docid", "id contains whitespace");
  EXPECT_ERROR_AT(write_click_log(path, {{"q1", "", "", "", {{"d1", "", "", 1, true, 0}}}}), path, 0,
                  "impressions[0].query", "empty query text");
  EXPECT_ERROR_AT(write_click_log(path, {{"q1", "text", "", "", {}}}), path, 0, "impressions[0].results",
                  "expected a non-empty array");
  EXPECT_ERROR_AT(
      write_click_log(path,
                      {{"q1", "text", "", "", {{"d1", "", "", 1, true, 0}, {"d2", "", "", 1, true, 0}}}}),
      path, 0, "impressions[0].results[1].position", "position 1 appears twice");
  EXPECT_ERROR_AT(
      write_click_log(path,
                      {{"q1", "text", "", "", {{"d1", "", "", 1, true, 0}, {"d1", "", "", 2, true, 0}}}}),
      path, 0, "impressions[0].results[1].docid", "document 'd1' appears twice");
  EXPECT_FALSE(fs::exists(path));
}

// -----------------------------------------------------------------------------------------------------------
// Round trips: what a writer writes, the reader reads back unchanged

TEST(FormatRoundTrip, QueriesReadBackAsWritten) {
  TempDir dir;
  const auto path = (dir.path() / "queries.tsv").string();
  Queries original;
  original.add({"q2", "what is information science?  two spaces"});
  original.add({"1", "\xE5\xA6\x82\xE4\xBD\x95\xE9\x80\x9A\xE8\xBF\x87 caf\xC3\xA9 \xF0\x9F\x98\x80"});
  original.add({"q-3", " leading and trailing spaces "});
  write_queries(path, original);
  const auto read = read_queries(path);
  ASSERT_EQ(read.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(read.items()[i].id, original.items()[i].id);
    EXPECT_EQ(read.items()[i].text, original.items()[i].text);
  }
}

TEST(FormatRoundTrip, DocsReadBackAsWritten) {
  TempDir dir;
  const auto path = (dir.path() / "docs.tsv").string();
  Docs original;
  original.add({"d1", "Title", "Body text."});
  original.add({"d2", "", "passage without title"});
  original.add({"dev-d15000", "\xE5\xA6\x82\xE4\xBD\x95 title only", ""});
  write_docs(path, original);
  const auto read = read_docs(path);
  ASSERT_EQ(read.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(read.items()[i].id, original.items()[i].id);
    EXPECT_EQ(read.items()[i].title, original.items()[i].title);
    EXPECT_EQ(read.items()[i].text, original.items()[i].text);
  }
}

TEST(FormatRoundTrip, QrelsReadBackAsWrittenInADeterministicOrder) {
  TempDir dir;
  const auto path = (dir.path() / "qrels.txt").string();
  Qrels original;
  original.by_query["q2"]["d9"] = 0;
  original.by_query["q2"]["d1"] = 3;
  original.by_query["q1"]["d5"] = -1;
  original.by_query["q1"]["d10"] = 1000;
  write_qrels(path, original);
  EXPECT_EQ(read_text(path), "q1 0 d10 1000\nq1 0 d5 -1\nq2 0 d1 3\nq2 0 d9 0\n");
  EXPECT_EQ(read_qrels(path).by_query, original.by_query);
}

TEST(FormatRoundTrip, EmptyQrelsWritesAnEmptyFile) {
  TempDir dir;
  const auto path = (dir.path() / "qrels.txt").string();
  write_qrels(path, Qrels{});
  EXPECT_EQ(read_text(path), "");
  EXPECT_TRUE(read_qrels(path).by_query.empty());
}

TEST(FormatRoundTrip, RunScoresReadBackBitForBitAndRanksFollowTrecEvalOrder) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  const std::vector<double> scores = {0.1,
                                      1.0 / 3.0,
                                      -2.5e-300,
                                      15.780599594116211,
                                      std::numeric_limits<double>::max(),
                                      std::numeric_limits<double>::lowest(),
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::min(),
                                      1e-310,
                                      -0.0,
                                      123456789.12345679,
                                      1.0 / 3.0,  // a tie with the second score, broken by docid
                                      std::nextafter(1.0, 2.0)};
  disranker::Run original;
  original.tag = "exact";
  for (std::size_t i = 0; i < scores.size(); ++i) {
    original.by_query["q1"].push_back({"doc" + std::to_string(i), scores[i]});
    original.by_query["q2"].push_back({std::to_string(i), -scores[i]});
  }
  write_run(path, original);
  const auto read = read_run(path);
  EXPECT_EQ(read.tag, "exact");
  disranker::Run expected = original;
  expected.sort_by_score();
  ASSERT_EQ(read.by_query.size(), expected.by_query.size());
  for (const auto& [qid, entries] : expected.by_query) {
    const auto& got = read.by_query.at(qid);
    ASSERT_EQ(got.size(), entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(got[i].docid, entries[i].docid) << qid << " rank " << i + 1;
      EXPECT_EQ(bits(got[i].score), bits(entries[i].score)) << qid << " " << entries[i].docid;
    }
  }
  // The rank column counts 1..n per query in that order.
  std::map<std::string, std::size_t> next_rank;
  std::map<std::string, std::vector<std::string>> docids_in_file;
  for (const auto& [number, line] : lines_of(path)) {
    std::istringstream fields(line);
    std::string qid, q0, docid, tag;
    std::size_t rank = 0;
    fields >> qid >> q0 >> docid >> rank;
    EXPECT_EQ(q0, "Q0");
    EXPECT_EQ(rank, ++next_rank[qid]) << "line " << number;
    docids_in_file[qid].push_back(docid);
  }
  for (const auto& [qid, entries] : expected.by_query) {
    ASSERT_EQ(docids_in_file[qid].size(), entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(docids_in_file[qid][i], entries[i].docid);
  }
  // 1/3 twice in q1: doc11 ranks before doc1 (docid descending).
  const auto& q1 = read.by_query.at("q1");
  const auto pos = [&](const std::string& docid) {
    for (std::size_t i = 0; i < q1.size(); ++i) {
      if (q1[i].docid == docid) return i;
    }
    return q1.size();
  };
  EXPECT_EQ(pos("doc11") + 1, pos("doc1"));
}

TEST(FormatRoundTrip, RunScoresAreWrittenInShortestForm) {
  TempDir dir;
  const auto path = (dir.path() / "run.txt").string();
  disranker::Run run;
  run.by_query["q"] = {{"a", 0.1}, {"b", 15.780599594116211}};
  write_run(path, run);
  EXPECT_EQ(read_text(path), "q Q0 b 1 15.780599594116211 disranker\nq Q0 a 2 0.1 disranker\n");
}

TEST(FormatRoundTrip, ClickLogReadsBackAsWritten) {
  TempDir dir;
  const auto path = (dir.path() / "clicks.jsonl").string();
  const std::vector<Impression> original = {
      {"q1",
       "cheap \"flights\" \\ caf\xC3\xA9",
       "session-1",
       "user-7",
       {{"d1", "Title \xE5\xA6\x82\xE4\xBD\x95", "summary with\ttab and\nnewline", 1, true, 5300.25},
        {"d2", "", "", 2, false, 0},
        {"d3", "t3", "s3", 5, true, 0}}},
      {"q2", "x", "", "", {{"d1", "", "", 3, false, 0}}}};
  write_click_log(path, original);
  const auto read = read_click_log(path);
  ASSERT_EQ(read.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(read[i].qid, original[i].qid);
    EXPECT_EQ(read[i].query, original[i].query);
    EXPECT_EQ(read[i].session, original[i].session);
    EXPECT_EQ(read[i].user, original[i].user);
    ASSERT_EQ(read[i].results.size(), original[i].results.size());
    for (std::size_t j = 0; j < original[i].results.size(); ++j) {
      const auto& a = read[i].results[j];
      const auto& b = original[i].results[j];
      EXPECT_EQ(a.docid, b.docid);
      EXPECT_EQ(a.title, b.title);
      EXPECT_EQ(a.summary, b.summary);
      EXPECT_EQ(a.position, b.position);
      EXPECT_EQ(a.clicked, b.clicked);
      EXPECT_EQ(bits(a.dwell_ms), bits(b.dwell_ms));
    }
  }
  // One impression per line.
  EXPECT_EQ(lines_of(path).size(), 2u);
}

// -----------------------------------------------------------------------------------------------------------
// The shared data sets

// Where the shared data lives for the tests: $DISRANKER_DATA, else the folder beside the source tree.
fs::path shared_data_root() {
  const char* env = std::getenv("DISRANKER_DATA");
  if (env != nullptr && *env != '\0') return fs::path(env);
  return fs::path(DISRANKER_SOURCE_DIR) / ".." / "shared" / "data";
}

struct SharedSet {
  const char* name;
  std::size_t queries;                                    // lines of queries.tsv
  std::size_t docs;                                       // lines of docs.tsv
  std::size_t judged_queries;                             // queries in qrels.txt
  std::size_t judgments;                                  // lines of qrels.txt
  std::vector<std::pair<const char*, std::size_t>> runs;  // run.<name>.txt and its number of lines
  std::size_t docs_rejected_at_line = 0;  // a known validation failure of docs.tsv (see the Cranfield note)
};

// Counts as measured on the data; the README's figures are in the comments.
const std::vector<SharedSet>& shared_sets() {
  static const std::vector<SharedSet> sets = {
      // README: 43 judged queries, 14.6k passages (union of 6 retrievers' top-100).
      {"trec-dl19",
       43,
       14581,
       43,
       9260,
       {{"BM25", 4300},
        {"BM25_RM3", 4300},
        {"D_BERT_KD_TASB", 4300},
        {"OPEN_AI_ADA2", 4300},
        {"REP_LLAMA", 8600},  // a top-200, the only run that is not a top-100
        {"SPLADE_P_P_ENSEMBLE_DISTIL", 4300}}},
      // README: 53 judged, 10.5k.
      {"trec-dl21",
       53,
       10553,
       53,
       10828,
       {{"BM25", 5300}, {"BM25_RM3", 5300}, {"SPLADE_P_P_ENSEMBLE_DISTIL", 5300}}},
      // README: 76 queries, 16.7k, no labels (qrels.txt is empty).
      {"trec-dl22",
       76,
       16660,
       0,
       0,
       {{"BM25", 7600}, {"BM25_RM3", 7600}, {"SPLADE_P_P_ENSEMBLE_DISTIL", 7600}}},
      // README: 2118 / 296 questions.
      {"wikiqa-train", 2118, 18841, 2118, 20360, {}},
      {"wikiqa-dev", 296, 2708, 296, 2733, {}},
      // README: 791 / 69 queries, titles only, ~19 per query.
      {"qbqtc-train", 791, 15000, 791, 15000, {}},
      {"qbqtc-dev", 69, 1300, 69, 1300, {}},
      // README: 225 queries, 1400 title + abstract. Documents 471 and 995 are empty in the original collection
      // (cran.all.1400): rejected by default, kept when empty documents are allowed (995 is judged: query 125,
      // grade 2).
      {"cranfield", 225, 1400, 225, 1837, {}, 471},
      // README: 76 judged queries (queries.tsv holds all 112), 1460 title + abstract.
      {"cisi", 112, 1460, 76, 3114, {}},
  };
  return sets;
}

// Names the parameter in test listings (CTest shows it) instead of dumping its bytes.
void PrintTo(const SharedSet& set, std::ostream* os) { *os << set.name; }

class SharedDataSet : public ::testing::TestWithParam<SharedSet> {
 protected:
  void SetUp() override {
    root_ = shared_data_root();
    if (!fs::is_directory(root_)) {
      GTEST_SKIP() << "shared data not found at " << root_
                   << " (set DISRANKER_DATA to the shared data folder)";
    }
    dir_ = root_ / GetParam().name;
    ASSERT_TRUE(fs::is_directory(dir_)) << dir_ << " is missing from the shared data";
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path root_;
  fs::path dir_;
};

TEST_P(SharedDataSet, LoadsQueriesDocsQrelsAndRunsWithTheDocumentedCounts) {
  const SharedSet& set = GetParam();

  const auto queries = read_queries(file("queries.tsv"));
  EXPECT_EQ(queries.size(), set.queries);

  if (set.docs_rejected_at_line > 0) {
    // A known violation of the data rules in the shared data: see shared_sets().
    EXPECT_ERROR_AT(read_docs(file("docs.tsv")), file("docs.tsv"), set.docs_rejected_at_line, "text",
                    "has neither a title nor a text");
    // Allowed explicitly, the empty documents are kept (a judged one must keep its id) and listed.
    const auto docs = read_docs(file("docs.tsv"), /*allow_empty=*/true);
    EXPECT_EQ(docs.size(), set.docs);
    EXPECT_EQ(docs.empty_ids(), (std::vector<std::string>{"471", "995"}));
  } else {
    const auto docs = read_docs(file("docs.tsv"));
    EXPECT_EQ(docs.size(), set.docs);
  }

  const auto qrels = read_qrels(file("qrels.txt"));
  EXPECT_EQ(qrels.by_query.size(), set.judged_queries);
  EXPECT_EQ(qrels.num_judgments(), set.judgments);
  for (const auto& [qid, judged] : qrels.by_query) {
    EXPECT_NE(queries.find(qid), nullptr) << "qrels query " << qid << " is not in queries.tsv";
  }

  std::size_t run_files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("run.", 0) == 0) ++run_files;
  }
  EXPECT_EQ(run_files, set.runs.size()) << "run files in " << dir_;
  for (const auto& [retriever, lines] : set.runs) {
    SCOPED_TRACE(retriever);
    const auto run = read_run(file(std::string("run.") + retriever + ".txt"));
    EXPECT_EQ(run.num_entries(), lines);
    EXPECT_EQ(run.tag, retriever);
    EXPECT_EQ(run.by_query.size(), set.queries) << "every query has a candidate list";
    for (const auto& [qid, entries] : run.by_query) {
      EXPECT_NE(queries.find(qid), nullptr) << "run query " << qid << " is not in queries.tsv";
      EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end(), ranks_before));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SharedData, SharedDataSet, ::testing::ValuesIn(shared_sets()),
                         [](const ::testing::TestParamInfo<SharedSet>& param_info) {
                           std::string name = param_info.param.name;
                           for (auto& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(SharedData, RunCandidatesOfTrecDlAreDocumentsOfTheSet) {
  const auto root = shared_data_root();
  if (!fs::is_directory(root)) GTEST_SKIP() << "shared data not found at " << root;
  for (const char* set : {"trec-dl19", "trec-dl21", "trec-dl22"}) {
    SCOPED_TRACE(set);
    const auto docs = read_docs((root / set / "docs.tsv").string());
    const auto run = read_run((root / set / "run.BM25.txt").string());
    std::size_t missing = 0;
    for (const auto& [qid, entries] : run.by_query) {
      EXPECT_EQ(entries.size(), 100u) << "BM25 top-100 of query " << qid;
      for (const auto& e : entries) missing += docs.find(e.docid) == nullptr;
    }
    EXPECT_EQ(missing, 0u);
  }
}

TEST(SharedData, WikiQaHasAPositiveForAbout41PercentOfQuestions) {
  const auto root = shared_data_root();
  if (!fs::is_directory(root)) GTEST_SKIP() << "shared data not found at " << root;
  const auto qrels = read_qrels((root / "wikiqa-train" / "qrels.txt").string());
  std::size_t with_positive = 0;
  for (const auto& [qid, judged] : qrels.by_query) {
    for (const auto& [docid, grade] : judged) {
      if (grade > 0) {
        ++with_positive;
        break;
      }
    }
  }
  EXPECT_EQ(with_positive, 873u);
  EXPECT_NEAR(static_cast<double>(with_positive) / static_cast<double>(qrels.by_query.size()), 0.41, 0.01);
}

TEST(SharedDataLocation, DataDirFollowsTheDisrankerDataVariable) {
  const char* old = std::getenv("DISRANKER_DATA");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("DISRANKER_DATA", "/somewhere/data", 1);
  EXPECT_EQ(data_dir(), fs::path("/somewhere/data"));
  ::unsetenv("DISRANKER_DATA");
  EXPECT_EQ(data_dir(), fs::path("..") / "shared" / "data");
  if (old != nullptr) ::setenv("DISRANKER_DATA", saved.c_str(), 1);
}

TEST(SharedDataLocation, RequireDataFileNamesTheMissingFileAndTheVariable) {
  TempDir dir;
  const char* old = std::getenv("DISRANKER_DATA");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("DISRANKER_DATA", dir.path().c_str(), 1);
  dir.write("present.txt", "x");
  EXPECT_EQ(require_data_file("present.txt"), dir.path() / "present.txt");
  try {
    require_data_file("trec-dl19/qrels.txt");
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_PRED_FORMAT2(::testing::IsSubstring, (dir.path() / "trec-dl19/qrels.txt").string(), e.what());
    EXPECT_PRED_FORMAT2(::testing::IsSubstring, "DISRANKER_DATA", e.what());
  }
  if (old != nullptr) {
    ::setenv("DISRANKER_DATA", saved.c_str(), 1);
  } else {
    ::unsetenv("DISRANKER_DATA");
  }
}

}  // namespace
}  // namespace disranker
