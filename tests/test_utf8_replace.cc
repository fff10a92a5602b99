// replace_invalid_utf8 follows the WHATWG decoder: each maximal invalid subpart becomes one U+FFFD. The expected
// strings are what Node's TextDecoder / Buffer#toString('utf8') produce for the same bytes.
#include <gtest/gtest.h>

#include "core/utf8.h"

namespace disranker {
namespace {

const std::string R = "\xEF\xBF\xBD";

TEST(ReplaceInvalidUtf8, LeavesValidTextUnchanged) {
  EXPECT_EQ(replace_invalid_utf8("plain caf\xc3\xa9 \xf0\x9f\x98\x80"), "plain caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(replace_invalid_utf8(""), "");
}

TEST(ReplaceInvalidUtf8, ReplacesEachMaximalSubpartOnce) {
  EXPECT_EQ(replace_invalid_utf8("\xff\xfe" "ab"), R + R + "ab");
  EXPECT_EQ(replace_invalid_utf8("\xf0\x9f\x98"), R);          // a truncated 4-byte sequence is one subpart
  EXPECT_EQ(replace_invalid_utf8("\xe2\x82" "x"), R + "x");     // truncated by an ASCII byte
  EXPECT_EQ(replace_invalid_utf8("\x80\x80"), R + R);          // stray continuation bytes, one each
}

TEST(ReplaceInvalidUtf8, RejectsOverlongSurrogateAndOutOfRangeAtTheSecondByte) {
  EXPECT_EQ(replace_invalid_utf8("\xc0\xaf"), R + R);                  // C0 is never a lead
  EXPECT_EQ(replace_invalid_utf8("\xe0\x80\x80"), R + R + R);          // E0 needs A0..BF next
  EXPECT_EQ(replace_invalid_utf8("a\xed\xa0\x80" "b"), "a" + R + R + R + "b");  // surrogate D800
  EXPECT_EQ(replace_invalid_utf8("\xf4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
}

TEST(Utf8CodePoints, DecodeAndEncodeRoundTrip) {
  const std::string text = "a\xc3\xa9\xe5\x8c\x97\xf0\x9f\x98\x80";
  std::size_t pos = 0;
  std::u32string codes;
  while (pos < text.size()) codes.push_back(next_code_point(text, pos));
  EXPECT_EQ(codes, (std::u32string{U'a', U'\u00e9', U'\u5317', U'\U0001F600'}));
  std::string back;
  for (char32_t c : codes) append_utf8(c, back);
  EXPECT_EQ(back, text);
}

}  // namespace
}  // namespace disranker
