#include "data/check_data.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/data/data_fixtures.h"

namespace sweep::data {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_text;

json turn(const std::string& from, const std::string& value) {
  return {{"from", from}, {"value", value}};
}
json qa(const std::string& q, const std::string& a) {
  return json::array({turn("human", q), turn("gpt", a)});
}
json image_sample(const std::string& id, const std::string& image, json conversations) {
  return {{"id", id}, {"image", image}, {"conversations", std::move(conversations)}};
}
json text_sample(const std::string& id, json conversations) {
  return {{"id", id}, {"conversations", std::move(conversations)}};
}

// An image folder with good.png, bad.png (not an image) and adir/ (not a file).
void make_images(const TempDir& dir) {
  testing::write_png(dir / "good.png", testing::solid_image(4, 3, {1, 2, 3}));
  write_text(dir / "bad.png", "not an image");
  ::mkdir((dir / "adir").c_str(), 0755);
}

json clean_dataset() {
  return json::array(
      {image_sample("a", "good.png", qa("<image>\nWhat colour?", "Red.")),
       text_sample("b", qa("How many?", "Two.")),
       image_sample("c", "good.png",
                    json::array({turn("human", "Where?\n<image>"), turn("gpt", "Left."),
                                 turn("human", "Sure?"), turn("gpt", "Yes.")}))});
}

// One fault per sample, in this order.
const std::vector<std::pair<std::string, bool>> kFaults = {
    {"sample_not_object", true},
    {"missing_field", true},
    {"extra_field", true},
    {"wrong_type", true},
    {"image_missing", true},
    {"image_unreadable", true},
    {"image_not_decodable", true},
    {"image_token_missing", true},
    {"image_token_repeated", true},
    {"roles_not_alternating", true},
    {"empty_value", true},
    {"unknown_role", true},
    {"empty_conversation", true},
    {"no_answer", true},
    {"image_token_without_image", true},
    {"wrong_type", true},
    {"leading_gpt_turn", false},
    {"duplicate_id", false},
    {"extra_field", false},
    {"unanswered_turn", false},
};

json faulty_dataset() {
  const json ok = qa("<image>\nWhat colour?", "Red.");
  json text_ok = qa("How many?", "Two.");
  json d = json::array();
  d.push_back("just a string");
  d.push_back({{"id", "1"}, {"image", "good.png"}});
  d.push_back({{"id", "2"}, {"imgae", "good.png"}, {"conversations", text_ok}});
  d.push_back({{"id", "3"}, {"image", 5}, {"conversations", ok}});
  d.push_back(image_sample("4", "nope.png", ok));
  d.push_back(image_sample("5", "adir", ok));
  d.push_back(image_sample("6", "bad.png", ok));
  d.push_back(image_sample("7", "good.png", qa("What colour?", "Red.")));
  d.push_back(image_sample("8", "good.png", qa("<image>\n<image>\nWhat colour?", "Red.")));
  d.push_back(image_sample(
      "9", "good.png",
      json::array({turn("human", "<image>\nA?"), turn("human", "B?"), turn("gpt", "C.")})));
  d.push_back(image_sample("10", "good.png", qa("<image>\nWhat colour?", "")));
  d.push_back(text_sample("11", json::array({turn("user", "Q?"), turn("gpt", "A.")})));
  d.push_back(text_sample("12", json::array()));
  d.push_back(text_sample("13", json::array({turn("human", "Q?")})));
  d.push_back(text_sample("14", qa("<image>\nWhat colour?", "Red.")));
  d.push_back(text_sample("15", json::array({"hi"})));
  d.push_back(text_sample(
      "16", json::array({turn("gpt", "Hello."), turn("human", "Q?"), turn("gpt", "A.")})));
  d.push_back(text_sample("1", text_ok));
  d.push_back({{"id", "18"}, {"source", "sharegpt"}, {"conversations", text_ok}});
  d.push_back(text_sample(
      "19", json::array({turn("human", "Q?"), turn("gpt", "A."), turn("human", "And?")})));
  return d;
}

CheckReport check(const TempDir& dir, const json& data, const CheckOptions& base = {}) {
  write_text(dir / "data.json", data.dump(1));
  CheckOptions opt = base;
  opt.image_folder = dir.path();
  return check_data(dir / "data.json", opt);
}

TEST(CheckData, CleanDatasetPasses) {
  TempDir dir;
  make_images(dir);
  const CheckReport report = check(dir, clean_dataset());
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.samples, 3);
  EXPECT_TRUE(report.problems.empty()) << report.to_json().dump(1);
  EXPECT_TRUE(report.token_stats.is_null());
}

TEST(CheckData, NamesEachFaultKindWithIndexAndId) {
  TempDir dir;
  make_images(dir);
  const CheckReport report = check(dir, faulty_dataset());
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.samples, static_cast<int64_t>(kFaults.size()));
  for (size_t i = 0; i < kFaults.size(); ++i) {
    std::vector<const DataProblem*> found;
    for (const DataProblem& p : report.problems) {
      if (p.index == static_cast<int64_t>(i)) found.push_back(&p);
    }
    ASSERT_EQ(found.size(), 1u) << "sample " << i << ": " << report.to_json().dump(1);
    EXPECT_EQ(found[0]->kind, kFaults[i].first) << "sample " << i << ": " << found[0]->message;
    EXPECT_EQ(found[0]->error, kFaults[i].second) << "sample " << i;
  }
  EXPECT_EQ(report.errors(), 16);
  EXPECT_EQ(report.warnings(), 4);
  EXPECT_EQ(report.counts_by_kind.at("wrong_type"), 2);
  EXPECT_EQ(report.counts_by_kind.at("extra_field"), 2);
  EXPECT_EQ(report.counts_by_kind.at("image_missing"), 1);
}

TEST(CheckData, MessagesNameTheFieldTheValueAndAFix) {
  TempDir dir;
  make_images(dir);
  const CheckReport report = check(dir, faulty_dataset());
  auto problem_of = [&](int64_t index) {
    for (const DataProblem& p : report.problems) {
      if (p.index == index) return p;
    }
    return DataProblem{};
  };
  EXPECT_EQ(problem_of(2).message, "unknown field \"imgae\"");
  EXPECT_EQ(problem_of(2).hint, "did you mean \"image\"?");
  EXPECT_EQ(problem_of(2).id, "2");
  EXPECT_EQ(problem_of(3).message, "\"image\" is a number, expected a string path");
  EXPECT_EQ(problem_of(4).message, "image " + dir / "nope.png" + " does not exist");
  EXPECT_EQ(problem_of(4).hint, "image paths are relative to --image-folder");
  EXPECT_EQ(problem_of(9).message, "conversations[1] is from \"human\" after a \"human\" turn");
  EXPECT_EQ(problem_of(10).message, "conversations[1].value is empty");
  EXPECT_EQ(problem_of(11).message, "conversations[0].from is \"user\"");
  EXPECT_EQ(problem_of(17).message, "id 1 is also the id of sample 1");
  const json j = report.to_json();
  EXPECT_EQ(j["errors"], 16);
  EXPECT_EQ(j["problems"][0]["severity"], "error");
  EXPECT_EQ(j["problems"][0]["kind"], "sample_not_object");
  EXPECT_EQ(j["counts_by_kind"]["empty_value"], 1);
}

TEST(CheckData, FileLevelProblems) {
  TempDir dir;
  write_text(dir / "obj.json", R"({"data": []})");
  write_text(dir / "broken.json", "[{\"id\": \"a\"},");
  const CheckReport obj = check_data(dir / "obj.json", {});
  ASSERT_EQ(obj.problems.size(), 1u);
  EXPECT_EQ(obj.problems[0].kind, "not_an_array");
  EXPECT_EQ(obj.problems[0].index, -1);
  const CheckReport broken = check_data(dir / "broken.json", {});
  EXPECT_EQ(broken.counts_by_kind.at("invalid_json"), 1);
  EXPECT_EQ(broken.counts_by_kind.at("missing_field"), 1);  // sample 0 was read before the error
  const CheckReport missing = check_data(dir / "none.json", {});
  EXPECT_EQ(missing.problems.at(0).kind, "file_unreadable");
  EXPECT_FALSE(missing.ok());
}

// A model dir: the test tokenizer and a config with 16 image tokens (16 / 4)^2.
std::string make_model_dir(const TempDir& dir) {
  const std::string model = dir / "model";
  std::filesystem::create_directory(model);
  std::filesystem::copy_file(testing::test_tokenizer_dir() + "/tokenizer.model",
                             model + "/tokenizer.model");
  write_text(model + "/config.json",
             R"({"text_config": {"max_position_embeddings": 4096},
                 "vision_config": {"image_size": 16, "patch_size": 4}})");
  return model;
}

std::string words(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += i ? " red" : "red";
  return out;
}

TEST(CheckData, WithModelReportsTruncationZeroSupervisionAndMismatches) {
  TempDir dir;
  make_images(dir);
  json data = clean_dataset();
  data.push_back(image_sample("long-q", "good.png", qa("<image>\n" + words(300), "Red.")));
  data.push_back(text_sample("long-a", qa("What colour?", words(300))));
  data.push_back(text_sample("eos", qa("Where?", "Left.</s>Right.")));
  CheckOptions opt;
  opt.model_dir = make_model_dir(dir);
  opt.max_length = 150;
  const CheckReport report = check(dir, data, opt);
  EXPECT_EQ(report.counts_by_kind.at("truncated"), 2) << report.to_json().dump(1);
  EXPECT_EQ(report.counts_by_kind.at("no_supervised_tokens"), 1);
  EXPECT_EQ(report.counts_by_kind.at("tokenization_mismatch"), 1);
  EXPECT_EQ(report.errors(), 2);
  const json& stats = report.token_stats;
  EXPECT_EQ(stats["max_length"], 150);
  EXPECT_EQ(stats["image_tokens"], 16);
  EXPECT_EQ(stats["samples"], 6);
  EXPECT_EQ(stats["truncated"], 2);
  EXPECT_EQ(stats["zero_supervised"], 2);
  EXPECT_EQ(stats["mismatches"], 1);
  EXPECT_GT(stats["tokens"]["max"].get<int64_t>(), 300);
  for (const DataProblem& p : report.problems) {
    if (p.kind == "no_supervised_tokens") {
      EXPECT_EQ(p.id, "long-q");
    }
  }
}

TEST(CheckData, MaxLengthDefaultsToTheModelsPositionsCappedAt2048) {
  TempDir dir;
  make_images(dir);
  CheckOptions opt;
  opt.model_dir = make_model_dir(dir);
  opt.max_length = 0;
  EXPECT_EQ(check(dir, clean_dataset(), opt).token_stats["max_length"], 2048);
  write_text(opt.model_dir + "/config.json",
             R"({"text_config": {"max_position_embeddings": 256}})");
  const CheckReport report = check(dir, clean_dataset(), opt);
  EXPECT_EQ(report.token_stats["max_length"], 256);
  // No vision_config: 576 image tokens assumed, which leave the two image samples' answers
  // beyond 256 tokens.
  EXPECT_EQ(report.token_stats["image_tokens"], 576);
  EXPECT_EQ(report.counts_by_kind.at("no_supervised_tokens"), 2);
  EXPECT_FALSE(report.ok());
}

}  // namespace
}  // namespace sweep::data
