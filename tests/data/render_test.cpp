// `sweep check-data --show`: the rendered sample marks exactly the tokens the label mask
// supervises (labels != kIgnoreIndex from tokenize_sample, the worker's own preprocessing), places
// the image and shows where the maximum sequence length cuts.
#include "data/render.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "data/check_data.h"
#include "data/preprocess.h"
#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using testing::make_sample;
using testing::test_tokenizer;

std::string without_spaces(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); }),
          s.end());
  return s;
}

// The text inside [brackets] of a rendering, concatenated.
std::string bracketed(const std::string& text) {
  std::string out;
  int depth = 0;
  for (char c : text) {
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if (depth > 0) {
      out += c;
    }
  }
  return out;
}

// The supervised tokens' text as decoded from the label mask, "</s>" written out.
std::string supervised_text(const TokenizedSample& t, const Tokenizer& tok) {
  std::string out;
  std::vector<int64_t> run;
  for (size_t i = 0; i < t.labels.size(); ++i) {
    if (!is_supervised(t.labels[i])) continue;
    if (t.input_ids[i] == tok.eos_id()) {
      out += tok.decode(run) + "</s>";
      run.clear();
    } else {
      run.push_back(t.input_ids[i]);
    }
  }
  return out + tok.decode(run);
}

TokenizedSample two_rounds(const Tokenizer& tok) {
  return tokenize_sample(make_sample("s", "img.png",
                                     {"<image>\nWhat colour is the circle?", "Red.",
                                      "And the square?", "Blue, on the left."}),
                         tok, /*has_image=*/true);
}

TEST(RenderSample, SpansCoverEveryTokenAndCarryItsLabelMask) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t = two_rounds(tok);
  ASSERT_GT(t.supervised_tokens, 0);
  const RenderedSample r = render_sample(t, tok, /*image_tokens=*/16, /*max_length=*/4096);
  int64_t next = 0, supervised = 0;
  for (const RenderSpan& s : r.spans) {
    EXPECT_EQ(s.first_token, next);
    for (int64_t i = s.first_token; i < s.end_token; ++i) {
      EXPECT_EQ(s.supervised, is_supervised(t.labels[static_cast<size_t>(i)])) << "token " << i;
      if (s.supervised) ++supervised;
    }
    next = s.end_token;
  }
  EXPECT_EQ(next, static_cast<int64_t>(t.input_ids.size()));
  EXPECT_EQ(supervised, t.supervised_tokens);
  EXPECT_FALSE(r.truncated());
}

TEST(RenderSample, BracketsHoldExactlyTheSupervisedTokens) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t = two_rounds(tok);
  const std::string text = format_rendered(render_sample(t, tok, 16, 4096), /*color=*/false);
  EXPECT_EQ(without_spaces(bracketed(text)), without_spaces(supervised_text(t, tok))) << text;
  EXPECT_NE(text.find("ASSISTANT:"), std::string::npos);
  // One mark around each answer with its "</s>"; the leading space is the answer's first token's.
  EXPECT_NE(text.find("ASSISTANT:[ Red.</s>] USER:"), std::string::npos) << text;
  // The image sits right after the system prompt's "USER: " with its positions.
  EXPECT_NE(text.find("<image: 16 tokens at positions "), std::string::npos) << text;
  EXPECT_EQ(text.find("cut at"), std::string::npos);
}

TEST(RenderSample, ColourMarksTheSameSpansOnATerminal) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t = two_rounds(tok);
  const std::string text = format_rendered(render_sample(t, tok, 16, 4096), /*color=*/true);
  EXPECT_NE(text.find("ASSISTANT:\033[1;32m Red.</s>\033[0m USER:"), std::string::npos) << text;
  EXPECT_EQ(text.find("[ Red"), std::string::npos);
}

TEST(RenderSample, FullyMaskedSampleHasNoMark) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t =
      tokenize_sample(make_sample("eos", "", {"Where?", "Left.</s>Right."}), tok, false);
  ASSERT_TRUE(t.mismatch);
  const std::string text = format_rendered(render_sample(t, tok, 16, 4096), false);
  EXPECT_EQ(bracketed(text), "") << text;
}

TEST(RenderSample, TheCutShowsAndSpansPastItAreFlagged) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t = two_rounds(tok);
  const int64_t length = spliced_length(t, 16);
  const int64_t cut = length - 3;  // inside the last answer
  const RenderedSample r = render_sample(t, tok, 16, cut);
  EXPECT_TRUE(r.truncated());
  for (const RenderSpan& s : r.spans) {
    EXPECT_EQ(s.past_cut, s.position >= cut);
    if (!s.past_cut && s.kind != RenderSpan::Kind::kImage) {
      EXPECT_LE(s.position + s.positions, cut);
    }
  }
  const std::string text = format_rendered(r, false);
  EXPECT_NE(text.find("cut at max_seq_len " + std::to_string(cut) + " (3 more positions"),
            std::string::npos)
      << text;
  // Still exactly the label mask: the cut is shown, not applied to the marks.
  EXPECT_EQ(without_spaces(bracketed(text)), without_spaces(supervised_text(t, tok)));
}

TEST(RenderSample, AnImageThroughTheCutSaysWhereItIsCut) {
  const Tokenizer& tok = test_tokenizer();
  const TokenizedSample t = two_rounds(tok);
  const std::string text = format_rendered(render_sample(t, tok, 600, 512), false);
  EXPECT_NE(text.find("tokens at positions"), std::string::npos);
  EXPECT_NE(text.find(", cut at 512>"), std::string::npos) << text;
}

// check_data --show: the first N tokenised samples, and the errors that leave a sample nothing.
TEST(CheckDataShow, RendersTheFirstSamplesAndReportsACutImage) {
  testing::TempDir dir;
  testing::write_png(dir / "good.png", testing::solid_image(4, 3, {1, 2, 3}));
  const std::string model = dir / "model";
  std::filesystem::create_directory(model);
  std::filesystem::copy_file(testing::test_tokenizer_dir() + "/tokenizer.model",
                             model + "/tokenizer.model");
  testing::write_text(model + "/config.json",
                      R"({"text_config": {"max_position_embeddings": 64},
                          "vision_config": {"image_size": 32, "patch_size": 4}})");
  nlohmann::json data = nlohmann::json::array();
  data.push_back(testing::sample_json(make_sample("a", "", {"What colour?", "Red."})));
  data.push_back(
      testing::sample_json(make_sample("img", "good.png", {"<image>\nWhere?", "Left."})));
  data.push_back(testing::sample_json(make_sample("c", "", {"How many?", "Two."})));
  testing::write_text(dir / "data.json", data.dump());
  CheckOptions opt;
  opt.image_folder = dir.path();
  opt.model_dir = model;
  opt.max_length = 2048;  // clamped to the model's 64 positions
  opt.show = 2;
  const CheckReport report = check_data(dir / "data.json", opt);
  EXPECT_EQ(report.token_stats["max_length"], 64);
  EXPECT_NE(
      report.token_stats.value("note", "").find("past the model's max_position_embeddings 64"),
      std::string::npos)
      << report.token_stats.dump();
  ASSERT_EQ(report.shown.size(), 2u);
  EXPECT_EQ(report.shown[0].id, "a");
  EXPECT_EQ(report.shown[1].id, "img");
  EXPECT_EQ(report.shown[1].rendered.max_length, 64);
  // 64 image tokens after the system prompt end past position 64.
  ASSERT_EQ(report.counts_by_kind.count("image_truncated"), 1u) << report.to_json().dump(1);
  for (const DataProblem& p : report.problems) {
    if (p.kind == "image_truncated") {
      EXPECT_EQ(p.id, "img");
      EXPECT_TRUE(p.error);
    }
  }
  EXPECT_EQ(report.to_json()["shown"].size(), 2u);
}

}  // namespace
}  // namespace sweep::data
