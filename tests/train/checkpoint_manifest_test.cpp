// The base-model fingerprint and the checkpoint manifest: the same model has the same fingerprint
// whatever its path, dates or tensor-name layout; another seed, shape, config or tokenizer
// changes the named field; an adapter is refused on another base with both paths named, and a
// checkpoint without a manifest is accepted with a notice.
#include "worker/train/checkpoint_manifest.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "worker/model/safetensors.h"
#include "worker/train/model_fingerprint.h"

namespace sweep::train {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class CheckpointManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("manifest_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A model directory: config.json, one safetensors file with a small and a large tensor (the
  // large one is sampled), tokenizer.model. `seed` fills the weights.
  std::string make_model(const std::string& name, float seed, int64_t big = 40000,
                         const std::string& embed_name = "language_model.model.embed_tokens.weight",
                         const std::string& tokenizer = "spm") {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << json{{"model_type", "llava"}, {"hidden", 4}}.dump();
    std::ofstream(dir / "tokenizer.model") << tokenizer;
    small_.assign(8, seed);
    large_.resize(static_cast<size_t>(big));
    for (size_t i = 0; i < large_.size(); ++i) large_[i] = seed * static_cast<float>(i % 97);
    model::write_safetensors(
        (dir / "model.safetensors").string(),
        {{embed_name, model::DType::kF32, {2, 4}, small_.data()},
         {"multi_modal_projector.linear_1.weight", model::DType::kF32, {big}, large_.data()}});
    return dir.string();
  }

  fs::path root_;
  std::vector<float> small_, large_;
};

TEST_F(CheckpointManifestTest, TheSameModelUnderAnotherPathOrLayoutHasTheSameFingerprint) {
  const ModelFingerprint a = fingerprint_model_dir(make_model("a", 1.0f));
  const ModelFingerprint b = fingerprint_model_dir(make_model("b", 1.0f));
  // transformers >= 4.52 names the same tensor model.language_model.embed_tokens.weight.
  const ModelFingerprint c = fingerprint_model_dir(
      make_model("c", 1.0f, 40000, "model.language_model.embed_tokens.weight"));
  EXPECT_TRUE(fingerprint_differences(a, b).empty());
  EXPECT_TRUE(fingerprint_differences(a, c).empty());
  EXPECT_EQ(a.tensor_count, 2);
  EXPECT_EQ(a.weight_bytes, (8 + 40000) * 4);
}

TEST_F(CheckpointManifestTest, EachKindOfChangeNamesItsField) {
  const ModelFingerprint base = fingerprint_model_dir(make_model("base", 1.0f));
  EXPECT_EQ(fingerprint_differences(base, fingerprint_model_dir(make_model("seed", 2.0f))),
            std::vector<std::string>{"weights"});
  EXPECT_EQ(fingerprint_differences(base, fingerprint_model_dir(make_model("shape", 1.0f, 40004))),
            (std::vector<std::string>{"tensors", "weights"}));
  EXPECT_EQ(
      fingerprint_differences(
          base, fingerprint_model_dir(make_model(
                    "tok", 1.0f, 40000, "language_model.model.embed_tokens.weight", "other spm"))),
      std::vector<std::string>{"tokenizer"});
  const std::string cfg = make_model("cfg", 1.0f);
  std::ofstream(fs::path(cfg) / "config.json") << json{{"model_type", "llava"}, {"hidden", 8}};
  EXPECT_EQ(fingerprint_differences(base, fingerprint_model_dir(cfg)),
            std::vector<std::string>{"config"});
}

TEST_F(CheckpointManifestTest, AFingerprintRoundTripsThroughJson) {
  const ModelFingerprint a = fingerprint_model_dir(make_model("a", 1.0f));
  const ModelFingerprint b = ModelFingerprint::from_json(a.to_json(), "test");
  EXPECT_TRUE(fingerprint_differences(a, b).empty());
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_THROW(ModelFingerprint::from_json(json{{"config", "x"}}, "test"), std::runtime_error);
}

TEST_F(CheckpointManifestTest, AnAdapterOnAnotherBaseIsRefusedNamingBoth) {
  const std::string trained = make_model("trained", 1.0f);
  const std::string other = make_model("other", 3.0f);
  const fs::path ckpt = root_ / "step-000004";
  fs::create_directories(ckpt);
  write_manifest(ckpt.string(),
                 {{"base_model",
                   {{"path", trained}, {"fingerprint", fingerprint_model_dir(trained).to_json()}}},
                  {"step", 4}});
  std::ostringstream notices;
  EXPECT_NO_THROW(check_checkpoint_base(ckpt.string(), trained, "--model", notices));
  try {
    check_checkpoint_base(ckpt.string(), other, "--model", notices);
    FAIL() << "another base was accepted";
  } catch (const BaseMismatchError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("weights differ"), std::string::npos) << what;
    EXPECT_NE(what.find(trained), std::string::npos) << what;
    EXPECT_NE(what.find(other), std::string::npos) << what;
    EXPECT_NE(what.find("hint: pass the base it was trained on (--model " + trained),
              std::string::npos)
        << what;
  }
  EXPECT_TRUE(notices.str().empty());
  ASSERT_TRUE(read_manifest(ckpt.string()).has_value());
  EXPECT_EQ((*read_manifest(ckpt.string()))["format"], kManifestFormat);
}

TEST_F(CheckpointManifestTest, ACheckpointWithoutAManifestIsAcceptedWithANotice) {
  const std::string base = make_model("base", 1.0f);
  const fs::path ckpt = root_ / "old";
  fs::create_directories(ckpt);
  std::ostringstream notices;
  EXPECT_NO_THROW(check_checkpoint_base(ckpt.string(), base, "--model", notices));
  const std::string notice = notices.str();
  EXPECT_NE(notice.find("has no manifest.json"), std::string::npos) << notice;
  EXPECT_EQ(std::count(notice.begin(), notice.end(), '\n'), 1) << notice;
}

TEST_F(CheckpointManifestTest, AMalformedManifestIsAnErrorNamingTheFile) {
  const fs::path ckpt = root_ / "bad";
  fs::create_directories(ckpt);
  std::ofstream(ckpt / kManifestFile) << "{\"step\": 3}";
  try {
    read_manifest(ckpt.string());
    FAIL() << "a manifest without base_model was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((ckpt / kManifestFile).string()), std::string::npos);
  }
}

TEST_F(CheckpointManifestTest, ADataFileIsIdentifiedByItsContent) {
  fs::create_directories(root_);
  std::ofstream(root_ / "val.json") << "[1]";
  const json a = data_file_fingerprint((root_ / "val.json").string());
  std::ofstream(root_ / "val.json") << "[2]";
  const json b = data_file_fingerprint((root_ / "val.json").string());
  EXPECT_EQ(a["bytes"], 3);
  EXPECT_NE(a["hash"], b["hash"]);
  EXPECT_TRUE(data_file_fingerprint("").is_null());
}

}  // namespace
}  // namespace sweep::train
