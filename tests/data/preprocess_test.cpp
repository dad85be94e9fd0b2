#include "data/preprocess.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/failure.h"
#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::make_sample;
using testing::test_tokenizer;
using Ids = std::vector<int64_t>;

Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Ids ignored(size_t n) { return Ids(n, kIgnoreIndex); }

const std::string kSys = kVicunaSystem;

TEST(Tokenizer, TrainedWithLlamaIdsAndTrailingSpaceAsLoneToken) {
  const Tokenizer& tok = test_tokenizer();
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  // The "- 2" of LLaVA's instruction_len: BOS and the lone "▁" of the trailing space.
  const Ids with_space = tok.encode("ASSISTANT: ", true);
  const Ids without = tok.encode("ASSISTANT:", true);
  ASSERT_EQ(with_space.size(), without.size() + 1);
  EXPECT_EQ(Ids(with_space.begin(), with_space.end() - 1), without);
}

TEST(Tokenizer, EosMarkerIsOneTokenAndEachPieceGetsTheDummyPrefix) {
  const Tokenizer& tok = test_tokenizer();
  EXPECT_EQ(tok.encode("A red cup.</s>USER: Two", false),
            cat({tok.encode("A red cup.", false), {2}, tok.encode("USER: Two", false)}));
  EXPECT_EQ(tok.encode("<s>x", false), cat({{1}, tok.encode("x", false)}));
  EXPECT_EQ(tok.decode(tok.encode("What colour is the star?", true)), "What colour is the star?");
}

TEST(Tokenizer, ByteFallbackLeavesNoUnknownCharacter) {
  const Tokenizer& tok = test_tokenizer();
  const Ids ids = tok.encode("Zebra ∑ 42 ü", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.unk_id()), 0);
  EXPECT_EQ(tok.decode(ids), "Zebra ∑ 42 ü");
}

TEST(Tokenizer, ADirectoryWithOnlyTokenizerJsonIsNamedAsSuch) {
  const std::string dir = ::testing::TempDir() + "/tokenizer-json-only";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << "{}";
  try {
    Tokenizer::load(dir);
    FAIL() << "loaded a directory without tokenizer.model";
  } catch (const Failure& e) {
    EXPECT_NE(std::string(e.what()).find("has tokenizer.json but no tokenizer.model"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(LabelMask, TwoRoundImageSampleSupervisesExactlyTheAnswersAndTheirEos) {
  const Tokenizer& tok = test_tokenizer();
  const Sample s = make_sample(
      "1", "a.png", {"What is on the table?\n<image>", "A red cup.", "Where is it?", "Left."});
  const TokenizedSample t = tokenize_sample(s, tok, /*has_image=*/true);

  // Hand-built: BOS, the system + "USER: " chunk, the placeholder, the rest of round 1 (its
  // BOS dropped), "</s>", round 2 (each piece after "</s>" gets the dummy prefix), "</s>".
  const Ids sys = tok.encode(kSys + " USER: ", false);
  const Ids q1 = tok.encode("\nWhat is on the table? ASSISTANT:", false);
  const Ids a1 = tok.encode("A red cup.", false);
  const Ids q2 = tok.encode("USER: Where is it? ASSISTANT:", false);
  const Ids a2 = tok.encode("Left.", false);
  EXPECT_EQ(t.input_ids, cat({{1}, sys, {kImageTokenIndex}, q1, a1, {2}, q2, a2, {2}}));
  EXPECT_EQ(t.labels,
            cat({ignored(1 + sys.size() + 1 + q1.size()), a1, {2}, ignored(q2.size()), a2, {2}}));
  EXPECT_EQ(t.supervised_tokens, static_cast<int64_t>(a1.size() + a2.size() + 2));
  EXPECT_FALSE(t.mismatch);
  EXPECT_TRUE(t.has_image);
  // The last masked token of each instruction is the ":" of "ASSISTANT:".
  const size_t first_answer = 1 + sys.size() + 1 + q1.size();
  EXPECT_EQ(tok.decode({t.input_ids[first_answer - 1]}), ":");
}

TEST(LabelMask, TextOnlySampleHasNoPlaceholder) {
  const Tokenizer& tok = test_tokenizer();
  const Sample s = make_sample("2", "", {"How many shapes are there?", "Two."});
  const TokenizedSample t = tokenize_sample(s, tok, /*has_image=*/false);
  const Ids q = tok.encode(kSys + " USER: How many shapes are there? ASSISTANT:", false);
  const Ids a = tok.encode("Two.", false);
  EXPECT_EQ(t.input_ids, cat({{1}, q, a, {2}}));
  EXPECT_EQ(t.labels, cat({ignored(1 + q.size()), a, {2}}));
  EXPECT_FALSE(t.has_image);
}

TEST(LabelMask, EosInsideAnAnswerIsATokenizationMismatchMaskingEverything) {
  const Tokenizer& tok = test_tokenizer();
  const Sample s = make_sample("3", "", {"Where is it?", "Left.</s>Right."});
  const TokenizedSample t = tokenize_sample(s, tok, false);
  EXPECT_TRUE(t.mismatch);
  EXPECT_EQ(t.supervised_tokens, 0);
  EXPECT_EQ(t.labels, ignored(t.input_ids.size()));
  // Like LLaVA, the check is skipped once the counted length reaches max_length.
  EXPECT_FALSE(tokenize_sample(s, tok, false, /*max_length=*/4).mismatch);
}

TEST(LabelMask, SplicedLengthCountsImageTokensAndTruncationDropsLateAnswers) {
  const Tokenizer& tok = test_tokenizer();
  const Sample s = make_sample("4", "a.png", {"<image>\nWhere is it?", "Left."});
  const TokenizedSample t = tokenize_sample(s, tok, true);
  const auto n = static_cast<int64_t>(t.input_ids.size());
  EXPECT_EQ(spliced_length(t, 576), n + 575);
  EXPECT_EQ(supervised_after_truncation(t, 576, 4096), t.supervised_tokens);
  EXPECT_EQ(supervised_after_truncation(t, 576, n + 575 - 1), t.supervised_tokens - 1);
  EXPECT_EQ(supervised_after_truncation(t, 576, 100), 0);
}

TEST(FirstRoundPrompt, EndsWithAssistantColonAndCarriesTheReferenceAnswer) {
  const Tokenizer& tok = test_tokenizer();
  const Sample s =
      make_sample("5", "a.png", {"<image>\nWhat is on the table?", "A red cup.", "More?", "No."});
  const PromptAndAnswer p = first_round_prompt(s, tok, true);
  EXPECT_EQ(p.prompt_ids, cat({{1},
                               tok.encode(kSys + " USER: ", false),
                               {kImageTokenIndex},
                               tok.encode("\nWhat is on the table? ASSISTANT:", false)}));
  EXPECT_EQ(p.answer, "A red cup.");
}

TEST(NormalizeAnswer, LowerCasesCollapsesSpacesAndStripsTrailingPunctuation) {
  EXPECT_EQ(normalize_answer("  The  Red\tCup.! "), "the red cup");
  EXPECT_EQ(normalize_answer("Yes?"), "yes");
  EXPECT_EQ(normalize_answer("3.5"), "3.5");
  EXPECT_EQ(normalize_answer("..."), "");
}

}  // namespace
}  // namespace sweep::data
