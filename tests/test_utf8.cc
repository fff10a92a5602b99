// Specification of the UTF-8 validator that every reader runs on every text field.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/utf8.h"

namespace disranker {
namespace {

constexpr auto npos = std::string_view::npos;

// The well-formed byte sequences of the Unicode Standard (chapter 3, table 3-7), written independently of the
// validator under test.
bool well_formed_reference(const std::string& s) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto in = [&](std::size_t k, int lo, int hi) { return i + k < n && b[i + k] >= lo && b[i + k] <= hi; };
  while (i < n) {
    const int c = b[i];
    if (c <= 0x7F) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF && in(1, 0x80, 0xBF)) {
      i += 2;
    } else if (c == 0xE0 && in(1, 0xA0, 0xBF) && in(2, 0x80, 0xBF)) {
      i += 3;
    } else if (((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) && in(1, 0x80, 0xBF) &&
               in(2, 0x80, 0xBF)) {
      i += 3;
    } else if (c == 0xED && in(1, 0x80, 0x9F) && in(2, 0x80, 0xBF)) {
      i += 3;
    } else if (c == 0xF0 && in(1, 0x90, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF)) {
      i += 4;
    } else if (c >= 0xF1 && c <= 0xF3 && in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF)) {
      i += 4;
    } else if (c == 0xF4 && in(1, 0x80, 0x8F) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF)) {
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

TEST(Utf8Validator, AcceptsEmptyText) {
  EXPECT_EQ(find_invalid_utf8(""), npos);
}

TEST(Utf8Validator, AcceptsAsciiIncludingControlCharacters) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), npos);
  const char with_nul[] = "nul\0inside\x7F";
  EXPECT_EQ(find_invalid_utf8(std::string_view(with_nul, sizeof with_nul - 1)), npos);
}

TEST(Utf8Validator, AcceptsTwoByteSequences) {
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9"), npos);  // é U+00E9
  EXPECT_EQ(find_invalid_utf8("\xC2\x80"), npos);     // U+0080, the smallest two-byte code point
  EXPECT_EQ(find_invalid_utf8("\xDF\xBF"), npos);     // U+07FF, the largest
}

TEST(Utf8Validator, AcceptsThreeByteSequences) {
  EXPECT_EQ(find_invalid_utf8("\xE2\x82\xAC"), npos);              // € U+20AC
  EXPECT_EQ(find_invalid_utf8("\xE5\xA6\x82\xE4\xBD\x95"), npos);  // 如何
  EXPECT_EQ(find_invalid_utf8("\xE0\xA0\x80"), npos);              // U+0800, the smallest
  EXPECT_EQ(find_invalid_utf8("\xED\x9F\xBF"), npos);              // U+D7FF, just below the surrogates
  EXPECT_EQ(find_invalid_utf8("\xEE\x80\x80"), npos);              // U+E000, just above them
  EXPECT_EQ(find_invalid_utf8("\xEF\xBF\xBD"), npos);              // U+FFFD
  EXPECT_EQ(find_invalid_utf8("\xEF\xBF\xBF"), npos);              // U+FFFF, the largest
}

TEST(Utf8Validator, AcceptsFourByteSequences) {
  EXPECT_EQ(find_invalid_utf8("\xF0\x9F\x98\x80"), npos);  // 😀 U+1F600
  EXPECT_EQ(find_invalid_utf8("\xF0\x90\x80\x80"), npos);  // U+10000, the smallest
  EXPECT_EQ(find_invalid_utf8("\xF4\x8F\xBF\xBF"), npos);  // U+10FFFF, the largest code point
}

TEST(Utf8Validator, AcceptsMixedText) {
  EXPECT_EQ(find_invalid_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"), npos);
  EXPECT_TRUE(is_valid_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"));
}

TEST(Utf8Validator, RejectsOverlongTwoByteEncodingOfNul) {
  EXPECT_EQ(find_invalid_utf8("\xC0\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("\xC1\xBF"), 0u);  // overlong U+007F
}

TEST(Utf8Validator, RejectsOverlongThreeByteEncoding) {
  EXPECT_EQ(find_invalid_utf8("\xE0\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("\xE0\x9F\xBF"), 0u);  // overlong U+07FF
}

TEST(Utf8Validator, RejectsOverlongFourByteEncoding) {
  EXPECT_EQ(find_invalid_utf8("\xF0\x80\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("\xF0\x8F\xBF\xBF"), 0u);  // overlong U+FFFF
}

TEST(Utf8Validator, RejectsUtf16Surrogates) {
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);              // U+D800
  EXPECT_EQ(find_invalid_utf8("\xED\xBF\xBF"), 0u);              // U+DFFF
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\xBD\xED\xB8\x80"), 0u);  // CESU-8 surrogate pair for U+1F600
}

TEST(Utf8Validator, RejectsCodePointsAboveU10FFFF) {
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // U+110000
  EXPECT_EQ(find_invalid_utf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("\xF7\xBF\xBF\xBF"), 0u);
}

TEST(Utf8Validator, RejectsBytesThatNeverAppearInUtf8) {
  for (int byte : {0xF8, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF}) {
    EXPECT_EQ(find_invalid_utf8(std::string(1, static_cast<char>(byte)) + "\x80\x80\x80\x80\x80"), 0u)
        << byte;
  }
}

TEST(Utf8Validator, RejectsSequenceTruncatedByEndOfText) {
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);
  EXPECT_EQ(find_invalid_utf8("ab\xE2\x82"), 2u);
  EXPECT_EQ(find_invalid_utf8("ab\xF0\x9F\x98"), 2u);
}

TEST(Utf8Validator, RejectsSequenceInterruptedByAscii) {
  EXPECT_EQ(find_invalid_utf8("\xE2\x82"
                              "A"),
            0u);
  EXPECT_EQ(find_invalid_utf8("x\xF0\x9F"
                              "AB"),
            1u);
  EXPECT_EQ(find_invalid_utf8("\xC3 "), 0u);
}

TEST(Utf8Validator, RejectsStrayContinuationByte) {
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("ab\xBF"
                              "c"),
            2u);
  EXPECT_EQ(find_invalid_utf8("\xC3\xA9\xA9"), 2u);  // one continuation too many after é
}

TEST(Utf8Validator, ReportsOffsetOfFirstInvalidSequence) {
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xFF and \xC0\x80"), 6u);
  EXPECT_FALSE(is_valid_utf8("caf\xC3\xA9 \xFF"));
}

TEST(Utf8Validator, LatinOneTextIsInvalid) {
  // The commonest real-world mistake: a file saved as ISO-8859-1.
  EXPECT_EQ(find_invalid_utf8("caf\xE9 au lait"), 3u);
}

TEST(Utf8Validator, AgreesWithUnicodeTableOnEveryStringOfUpToThreeBytes) {
  std::string s;
  std::size_t disagreements = 0;
  for (int length = 1; length <= 3; ++length) {
    const std::uint32_t count = 1u << (8 * length);
    s.assign(length, '\0');
    for (std::uint32_t v = 0; v < count; ++v) {
      for (int k = 0; k < length; ++k) s[k] = static_cast<char>((v >> (8 * k)) & 0xFF);
      if (is_valid_utf8(s) != well_formed_reference(s) && ++disagreements <= 5) {
        ADD_FAILURE() << "disagreement on " << length << " bytes, value " << std::hex << v;
      }
    }
  }
  EXPECT_EQ(disagreements, 0u);
}

TEST(Utf8Validator, AgreesWithUnicodeTableOnFourByteStringsWithUtf8LeadBytes) {
  // Every lead byte F0..F7 with every second byte and a sample of third and fourth bytes.
  std::size_t disagreements = 0;
  std::string s(4, '\0');
  for (int lead = 0xE0; lead <= 0xFF; ++lead) {
    for (int second = 0; second <= 0xFF; ++second) {
      for (int third : {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF}) {
        for (int fourth : {0x41, 0x80, 0xBF, 0xC0}) {
          s[0] = static_cast<char>(lead), s[1] = static_cast<char>(second);
          s[2] = static_cast<char>(third), s[3] = static_cast<char>(fourth);
          if (is_valid_utf8(s) != well_formed_reference(s) && ++disagreements <= 5) {
            ADD_FAILURE() << "disagreement on " << std::hex << lead << ' ' << second << ' ' << third << ' '
                          << fourth;
          }
        }
      }
    }
  }
  EXPECT_EQ(disagreements, 0u);
}

}  // namespace
}  // namespace disranker
