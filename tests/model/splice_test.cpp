// The splicing steps one by one: checks, text embedding, image placement, truncation, padding.
#include "worker/model/splice.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace sweep::model {
namespace {

constexpr int64_t H = 3;  // embedding width of the tests

torch::nn::Embedding numbered_embedding(int64_t vocab) {
  torch::nn::Embedding e(vocab, H);
  torch::NoGradGuard no_grad;
  e->weight.copy_(torch::arange(vocab * H, torch::kFloat32).view({vocab, H}));  // row i: 3i..3i+2
  return e;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::string check_error(const std::vector<int64_t>& ids, const std::vector<int64_t>& labels,
                        bool has_image) {
  try {
    check_sample(ids, labels, has_image, /*index=*/2, /*vocab_size=*/10);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(SpliceCheck, NamesTheSampleAndTheFault) {
  EXPECT_EQ(check_error({1, 2}, {1}, false), "splice: sample 2 has 2 ids but 1 labels");
  EXPECT_EQ(check_error({1, kImageTokenIndex, kImageTokenIndex}, {1, 1, 1}, true),
            "splice: sample 2 has more than one image placeholder");
  EXPECT_EQ(check_error({1, kImageTokenIndex}, {1, 1}, false),
            "splice: sample 2 has an image placeholder but no image");
  EXPECT_EQ(check_error({1, 10}, {1, 1}, false),
            "splice: sample 2 has token id 10 outside the vocabulary [0, 10)");
  EXPECT_EQ(check_error({1, -1}, {1, 1}, false),
            "splice: sample 2 has token id -1 outside the vocabulary [0, 10)");
  EXPECT_EQ(check_error({1, kImageTokenIndex, 9}, {1, 1, 9}, true), "");
  EXPECT_EQ(check_error({1, 2}, {1, 2}, true), "");  // an image without a placeholder is unused
}

TEST(SpliceSteps, PlaceholderPositionIsItsIndexInTheIds) {
  EXPECT_EQ(image_placeholder_position({1, 4, kImageTokenIndex, 5}), 2);
  EXPECT_EQ(image_placeholder_position({kImageTokenIndex}), 0);
  EXPECT_FALSE(image_placeholder_position({1, 4, 5}).has_value());
}

TEST(SpliceSteps, EmbedTextLeavesThePlaceholderOut) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SampleSequence s =
      embed_text(embed, {1, kImageTokenIndex, 3, 4}, {kIgnoreIndex, kIgnoreIndex, 3, 4});
  ASSERT_EQ(s.embeds.sizes(), torch::IntArrayRef({3, H}));
  EXPECT_TRUE(torch::equal(s.embeds[0], embed->weight[1]));
  EXPECT_TRUE(torch::equal(s.embeds[1], embed->weight[3]));
  EXPECT_TRUE(torch::equal(s.embeds[2], embed->weight[4]));
  EXPECT_EQ(to_vector(s.labels), (std::vector<int64_t>{kIgnoreIndex, 3, 4}));
}

TEST(SpliceSteps, EmbedTextOfNoTextIsEmptyInTheEmbeddingDtype) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SampleSequence s = embed_text(embed, {kImageTokenIndex}, {kIgnoreIndex});
  EXPECT_EQ(s.embeds.sizes(), torch::IntArrayRef({0, H}));
  EXPECT_EQ(s.embeds.scalar_type(), torch::kFloat32);
  EXPECT_EQ(s.labels.numel(), 0);
}

TEST(SpliceSteps, ImageFeaturesGoWhereThePlaceholderWasWithUnsupervisedLabels) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SampleSequence text =
      embed_text(embed, {1, kImageTokenIndex, 3}, {kIgnoreIndex, kIgnoreIndex, 3});
  torch::Tensor features = -torch::ones({2, H});  // (P, H)
  SampleSequence s = place_image_features(text, /*at=*/1, features);
  ASSERT_EQ(s.embeds.sizes(), torch::IntArrayRef({4, H}));
  EXPECT_TRUE(torch::equal(s.embeds[0], embed->weight[1]));
  EXPECT_TRUE(torch::equal(s.embeds.slice(0, 1, 3), features));
  EXPECT_TRUE(torch::equal(s.embeds[3], embed->weight[3]));
  EXPECT_EQ(to_vector(s.labels),
            (std::vector<int64_t>{kIgnoreIndex, kIgnoreIndex, kIgnoreIndex, 3}));

  SampleSequence only_image =
      place_image_features(embed_text(embed, {kImageTokenIndex}, {0}), 0, features);
  EXPECT_TRUE(torch::equal(only_image.embeds, features));
}

TEST(SpliceSteps, TruncateKeepsTheFirstMaxLengthPositions) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SampleSequence s = embed_text(embed, {1, 2, 3, 4}, {1, 2, 3, 4});
  SampleSequence cut = truncate(s, 3);
  EXPECT_TRUE(torch::equal(cut.embeds, s.embeds.slice(0, 0, 3)));
  EXPECT_EQ(to_vector(cut.labels), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(truncate(s, 4).embeds.size(0), 4);
  EXPECT_EQ(truncate(s, 9).embeds.size(0), 4);
  EXPECT_EQ(truncate(s, 0).embeds.size(0), 4);  // no limit
}

TEST(SpliceSteps, PadBatchPadsRightWithZerosIgnoredLabelsAndMaskedPositions) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SampleSequence short_one = embed_text(embed, {5, 6}, {kIgnoreIndex, 6});
  SampleSequence long_one = embed_text(embed, {1, 2, 3, 4}, {1, 2, 3, 4});
  SplicedBatch b = pad_batch({short_one, long_one}, torch::kCPU);
  ASSERT_EQ(b.inputs_embeds.sizes(), torch::IntArrayRef({2, 4, H}));
  EXPECT_TRUE(torch::equal(b.inputs_embeds[0].slice(0, 0, 2), short_one.embeds));
  EXPECT_EQ(b.inputs_embeds[0].slice(0, 2).abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(b.inputs_embeds[1], long_one.embeds));
  EXPECT_EQ(to_vector(b.labels[0]),
            (std::vector<int64_t>{kIgnoreIndex, 6, kIgnoreIndex, kIgnoreIndex}));
  EXPECT_EQ(to_vector(b.labels[1]), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(to_vector(b.position_ids[0]), (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_EQ(to_vector(b.position_ids[1]), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(to_vector(b.attention_mask.to(torch::kInt64)),
            (std::vector<int64_t>{1, 1, 0, 0, 1, 1, 1, 1}));
}

TEST(SpliceSteps, PadBatchOfEmptySamplesHasOnePaddingPosition) {
  torch::nn::Embedding embed = numbered_embedding(10);
  SplicedBatch b = pad_batch({embed_text(embed, {}, {})}, torch::kCPU);
  EXPECT_EQ(b.inputs_embeds.sizes(), torch::IntArrayRef({1, 1, H}));
  EXPECT_EQ(b.attention_mask.sum().item<int64_t>(), 0);
  EXPECT_EQ(b.labels[0][0].item<int64_t>(), kIgnoreIndex);
}

}  // namespace
}  // namespace sweep::model
