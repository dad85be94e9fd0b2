#include <gtest/gtest.h>

#include "orchestrator/spec/job_identity.h"
#include "tests/spec/spec_test_util.h"

namespace sweep {
namespace {

using json = nlohmann::json;

std::vector<std::string> hashes_of(const std::string& text) {
  auto spec = parse_sweep_spec(text, "t.yaml");
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().to_string());
  std::vector<std::string> out;
  if (!spec.ok()) return out;
  auto jobs = expand_grid(*spec);
  EXPECT_TRUE(jobs.ok());
  if (!jobs.ok()) return out;
  for (const ExpandedJob& job : *jobs) out.push_back(job.hash);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CanonicalJson, SortsKeysAndDropsWhitespace) {
  EXPECT_EQ(canonical_json(json::parse(R"({"b": 1, "a": {"d": [1, 2], "c": "x"}})")),
            R"({"a":{"c":"x","d":[1,2]},"b":1})");
}

TEST(CanonicalJson, SpellingsOfOneNumberPrintAlike) {
  EXPECT_EQ(canonical_json(json::parse("1e-4")), canonical_json(json::parse("0.0001")));
  EXPECT_EQ(canonical_json(json::parse("1.0E-4")), "0.0001");
  EXPECT_EQ(canonical_json(json(16.0)), "16");
  EXPECT_EQ(canonical_json(json(16)), "16");
  EXPECT_EQ(canonical_json(json(-0.0)), "0");
  EXPECT_EQ(canonical_json(json(0.1)), "0.10000000000000001");
}

TEST(NormaliseParams, GivesEachKeyItsTableType) {
  json p = normalise_params(json::parse(
      R"({"lora_r": 8.0, "lora_alpha": 16, "target_modules": ["v_proj", "q_proj", "v_proj"],
          "rank_pattern": {"q_proj": 4}, "lr_scheduler": "cosine"})"));
  EXPECT_TRUE(p["lora_r"].is_number_integer());
  EXPECT_TRUE(p["lora_alpha"].is_number_float());
  EXPECT_EQ(p["target_modules"], json({"q_proj", "v_proj"}));
  EXPECT_TRUE(p["rank_pattern"]["q_proj"].is_number_float());
  EXPECT_EQ(p["lr_scheduler"], "cosine");
}

TEST(JobHash, IsSixteenHexDigitsAndPinned) {
  SweepSpec spec;
  spec.base_model = "builtin:tiny-llava";
  spec.data = {"builtin:shapes/vqa_train.json", "builtin:shapes/vqa_val.json",
               "builtin:shapes/images"};
  const std::string h = job_hash(spec, json{{"lora_r", 8}, {"lora_alpha", 16}});
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  // The identity of stored jobs: this value must only change with a migration of stored hashes.
  EXPECT_EQ(h, fnv1a64_hex(R"({"base_model":"builtin:tiny-llava","data":{"image_folder":)"
                           R"("builtin:shapes/images","train":"builtin:shapes/vqa_train.json",)"
                           R"("val":"builtin:shapes/vqa_val.json"},"params":{"lora_alpha":16,)"
                           R"("lora_r":8},"v":1})"));
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");
}

TEST(JobHash, KeysThatDoNotChangeTheResultStayOutOfTheIdentity) {
  SweepSpec spec;
  spec.base_model = "builtin:tiny-llava";
  const json plain = {{"lora_r", 8}, {"lora_alpha", 16}};
  json checkpointed = plain;
  checkpointed["gradient_checkpointing"] = true;
  EXPECT_EQ(job_hash(spec, checkpointed), job_hash(spec, plain));
  json other = plain;
  other["lora_r"] = 4;
  EXPECT_NE(job_hash(spec, other), job_hash(spec, plain));
}

TEST(JobHash, IgnoresKeyOrderAndNumberSpelling) {
  const std::string a = testing::kHead +
                        "train:\n  max_steps: 60\n  warmup_ratio: 0.05\n"
                        "grid:\n  lora_r: [4, 8]\n  learning_rate: [1e-4, 3e-4]\n";
  const std::string b =
      "grid:\n  learning_rate: [0.0003, 0.0001]\n  lora_r: [8.0, 4]\n"
      "train:\n  warmup_ratio: 5.0e-2\n  max_steps: 60.0\n"
      "data:\n  image_folder: builtin:shapes/images\n  val: builtin:shapes/vqa_val.json\n"
      "  train: builtin:shapes/vqa_train.json\n"
      "base_model: builtin:tiny-llava\nname: other_name\n";
  EXPECT_EQ(hashes_of(a), hashes_of(b));
  EXPECT_EQ(hashes_of(a).size(), 4u);
}

TEST(JobHash, ExplicitDefaultIsTheSameJobAsNoValue) {
  EXPECT_EQ(hashes_of(testing::kHead + "train:\n  seed: 42\n"), hashes_of(testing::kHead));
}

TEST(JobHash, ChangesWithParamsModelAndDataButNotWithRunSettings) {
  const auto base = hashes_of(testing::kHead);
  EXPECT_NE(hashes_of(testing::kHead + "train:\n  seed: 1\n"), base);
  EXPECT_EQ(hashes_of(testing::kHead + "objective: {metric: val_token_acc}\nretries: 3\n"
                                       "resources: {gpus: [0]}\nmax_job_time: 2h\n"),
            base);
  std::string other_model = testing::kHead;
  other_model.replace(other_model.find("builtin:tiny-llava"), 18, "/models/llava");
  EXPECT_NE(hashes_of(other_model), base);
  std::string other_data = testing::kHead;
  other_data.replace(other_data.find("vqa_val"), 7, "vqa_test");
  EXPECT_NE(hashes_of(other_data), base);
}

}  // namespace
}  // namespace sweep
