// The memory estimate's parameter counts are checked against figures published for real models;
// its byte terms against each other (checkpointing, precision, batch) and the demo model's file.
#include "protocol/memory_estimate.h"

#include <gtest/gtest.h>

#include "common/failure.h"

namespace sweep {
namespace {

using json = nlohmann::json;

// llava-hf/llava-1.5-7b-hf's config.json: LLaMA-2-7B with the vocabulary padded to 32064,
// CLIP ViT-L/14 at 336 pixels.
json llava_7b_config() {
  return json{{"text_config",
               {{"hidden_size", 4096},
                {"intermediate_size", 11008},
                {"num_hidden_layers", 32},
                {"num_attention_heads", 32},
                {"num_key_value_heads", 32},
                {"vocab_size", 32064},
                {"max_position_embeddings", 4096}}},
              {"vision_config",
               {{"hidden_size", 1024},
                {"intermediate_size", 4096},
                {"num_hidden_layers", 24},
                {"num_attention_heads", 16},
                {"image_size", 336},
                {"patch_size", 14}}}};
}

// The demo's tiny model (builtin:tiny-llava).
json tiny_config() {
  return json{{"text_config",
               {{"hidden_size", 128},
                {"intermediate_size", 344},
                {"num_hidden_layers", 4},
                {"num_attention_heads", 4},
                {"num_key_value_heads", 2},
                {"head_dim", 32},
                {"vocab_size", 600},
                {"max_position_embeddings", 512}}},
              {"vision_config",
               {{"hidden_size", 64},
                {"intermediate_size", 128},
                {"num_hidden_layers", 2},
                {"num_attention_heads", 4},
                {"image_size", 64},
                {"patch_size", 8}}}};
}

TrainParams params(const json& overrides = json::object()) {
  return TrainParams::from_json(overrides);
}

TEST(MemoryEstimate, CountsTheParametersOfLlava15_7b) {
  ModelShape shape = ModelShape::from_config(llava_7b_config(), "config.json");
  ParamCounts c = count_params(shape, params({{"lora_r", 64}}));
  EXPECT_EQ(shape.image_tokens(), 576);
  EXPECT_EQ(c.vision, 303'507'456);  // CLIPVisionModel ViT-L/14-336
  EXPECT_EQ(c.projector, 20'979'712);
  EXPECT_EQ(c.total(), 7'063'427'072);  // LlavaForConditionalGeneration, 7.06B
  // PEFT on LLaMA-7B, r=64 on every Linear of the language model: 159,907,840 trainable.
  EXPECT_EQ(c.adapters, 159'907'840);
  EXPECT_EQ(c.trainable, c.adapters + c.projector);
}

TEST(MemoryEstimate, CountsTheDemoModelAsItsSafetensorsFileHoldsIt) {
  // builtin:tiny-llava's model.safetensors is 3,963,080 bytes: fp32 tensors and a JSON header.
  ModelShape shape = ModelShape::from_config(tiny_config(), "config.json");
  const int64_t bytes = count_params(shape, params()).total() * 4;
  EXPECT_LT(bytes, 3'963'080);
  EXPECT_GT(bytes, 3'963'080 - 32'000);  // the header names ~100 tensors
}

TEST(MemoryEstimate, FullModeTrainsTheLanguageModelAndProjector) {
  ModelShape shape = ModelShape::from_config(llava_7b_config(), "config.json");
  ParamCounts c = count_params(shape, params({{"mode", "full"}}));
  EXPECT_EQ(c.adapters, 0);
  EXPECT_EQ(c.trainable, c.language + c.projector);
}

TEST(MemoryEstimate, TermsMoveTheWayTheSettingsDo) {
  ModelShape shape = ModelShape::from_config(llava_7b_config(), "config.json");
  MemoryEstimate base = estimate_memory(shape, params({{"batch_size", 4}}), "cuda");
  EXPECT_EQ(base.sequence_length, 2048);  // model_max_length's default, under 4096 positions
  EXPECT_EQ(base.weights, (7'063'427'072 - 20'979'712) * 2);  // bf16 on CUDA, projector in fp32

  MemoryEstimate checkpointed =
      estimate_memory(shape, params({{"batch_size", 4}, {"gradient_checkpointing", true}}), "cuda");
  EXPECT_LT(checkpointed.activations * 8, base.activations);
  EXPECT_EQ(checkpointed.weights, base.weights);

  MemoryEstimate doubled = estimate_memory(shape, params({{"batch_size", 8}}), "cuda");
  EXPECT_EQ(doubled.logits, 2 * base.logits);
  EXPECT_GT(doubled.activations, base.activations);

  MemoryEstimate cpu = estimate_memory(shape, params({{"batch_size", 4}}), "cpu");
  EXPECT_EQ(cpu.weights, 2 * base.weights);  // auto counts as fp32 on a CPU (an upper bound)

  MemoryEstimate short_model =
      estimate_memory(ModelShape::from_config(tiny_config(), "config.json"), params(), "cpu");
  EXPECT_EQ(short_model.sequence_length, 512);  // never past max_position_embeddings
}

TEST(MemoryEstimate, AMalformedConfigNamesTheKey) {
  json config = tiny_config();
  config["text_config"].erase("hidden_size");
  try {
    ModelShape::from_config(config, "/m/config.json");
    FAIL() << "expected a Failure";
  } catch (const Failure& e) {
    EXPECT_NE(std::string(e.what()).find("/m/config.json: text_config.hidden_size"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ModelShape::from_config(json{{"text_config", 1}}, "c"), Failure);
}

TEST(MemoryEstimate, DescribesItselfInBinaryUnits) {
  EXPECT_EQ(format_bytes(int64_t{3} << 30), "3.00 GiB");
  EXPECT_EQ(format_bytes(int64_t{300} << 20), "300 MiB");
  MemoryEstimate e;
  e.weights = int64_t{1} << 30;
  e.sequence_length = 512;
  EXPECT_NE(describe_estimate(e).find("~1.00 GiB (weights 1.00 GiB"), std::string::npos);
}

}  // namespace
}  // namespace sweep
