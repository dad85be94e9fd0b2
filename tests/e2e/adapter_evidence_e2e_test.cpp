// Evidence that an adapter did something, through the real programs on a tiny random LLaVA: a
// dataset that would train on nothing is refused by `sweep run` before any job starts; jobs that
// cannot beat the base model (learning rate 0) make `sweep best` fail unless --allow-no-gain, and
// the leaderboard shows the base model's score and the gain; `sweep check-data --show` marks
// exactly the tokens the label mask supervises.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/llava_json.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "tests/common/cli_run.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sweep::testing::run_program;
using sweep::testing::RunResult;
using sweep::testing::shell_quote;

json qa(const std::string& id, const std::string& question, const std::string& answer) {
  return {{"id", id},
          {"conversations", json::array({{{"from", "human"}, {"value", question}},
                                         {{"from", "gpt"}, {"value", answer}}})}};
}

class AdapterEvidence : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("sweep-evidence-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    fs::create_directories(root_ / "images");
    make_model();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  std::string path(const std::string& name) const { return (root_ / name).string(); }

  // A tokenizer trained here and a random tiny LLaVA (512 positions) sized to it.
  void make_model() {
    std::ofstream corpus(root_ / "corpus.txt");
    corpus << "A chat between a curious user and an artificial intelligence assistant. The "
              "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
              "USER: ASSISTANT:\n"
              "What colour is the circle? red green blue yellow. How many shapes? one two three\n";
    corpus.close();
    const std::string model = path("model");
    ASSERT_EQ(sweep_worker("init-model --preset tiny --vocab-size 300 --out " + shell_quote(model))
                  .exit_code,
              0);
    RunResult tok = run_program(
        SWEEP_TOKENIZER_BIN,
        shell_quote(path("corpus.txt")) + " " + shell_quote(model + "/tokenizer.model") + " 300",
        root_.string());
    ASSERT_EQ(tok.exit_code, 0) << tok.err;
  }

  RunResult sweep_worker(const std::string& args) {
    return run_program(SWEEP_WORKER_BIN, args, root_.string());
  }
  RunResult sweep(const std::string& args) {
    return run_program(SWEEP_BIN,
                       "--db " + shell_quote(path("sweep.db")) + " --runs " +
                           shell_quote(path("runs")) + " " + args,
                       root_.string(), "SWEEP_WORKER=" + shell_quote(SWEEP_WORKER_BIN));
  }

  void write_data(const std::string& name, const json& samples) {
    std::ofstream(root_ / name) << samples.dump(1);
  }

  // A one- or two-job sweep on text-only samples.
  void write_spec(const std::string& train, const std::string& learning_rates) {
    std::ofstream spec(root_ / "s.yaml");
    spec << "name: s\n"
            "base_model: "
         << path("model") << "\ndata:\n  train: " << path(train) << "\n  val: " << path("val.json")
         << "\n  image_folder: " << path("images")
         << "\n"
            "train: {max_steps: 4, eval_every: 2, eval_samples: 4, batch_size: 2, "
            "max_new_tokens: 2, save_top_k: 2}\n"
            "grid:\n"
            "  lora_r: [2]\n"
            "  learning_rate: "
         << learning_rates
         << "\n"
            "objective: {metric: val_loss, mode: min}\n"
            "resources: {slots: 1, threads_per_job: 1}\n";
  }

  json good_samples(int n) {
    const char* colours[] = {"red", "green", "blue", "yellow"};
    json out = json::array();
    for (int i = 0; i < n; ++i)
      out.push_back(qa("g" + std::to_string(i), "What colour is the circle?", colours[i % 4]));
    return out;
  }

  fs::path root_;
};

TEST_F(AdapterEvidence, AnswersWithEosAreRefusedBeforeAnyJobStarts) {
  json bad = json::array();
  for (int i = 0; i < 16; ++i)
    bad.push_back(qa("eos" + std::to_string(i), "What colour is the circle?", "red.</s>blue."));
  write_data("bad.json", bad);
  write_data("val.json", good_samples(4));
  write_spec("bad.json", "[1.0e-3]");
  RunResult r = sweep("run " + shell_quote(path("s.yaml")));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("data.train does not pass the data checks at model_max_length 2048"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(path("bad.json") + " sample 0 (id eos0): tokenization_mismatch"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("sample 15 (id eos15)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("to fix tokenization_mismatch: look for \"</s>\""), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("no job was started"), std::string::npos) << r.err;
  // The clamp to the tiny model's 512 positions is said once.
  EXPECT_NE(r.err.find("model_max_length 2048 is past the model's max_position_embeddings 512"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(root_ / "sweep.db"));
  EXPECT_FALSE(fs::exists(root_ / "runs" / "s" / "0"));
}

TEST_F(AdapterEvidence, JobsThatCannotBeatTheBaseMakeBestFail) {
  write_data("train.json", good_samples(8));
  write_data("val.json", good_samples(4));
  write_spec("train.json", "[0.0]");
  RunResult ran = sweep("run " + shell_quote(path("s.yaml")));
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.err.find("vs base"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("no job beat the base model"), std::string::npos) << ran.err;

  RunResult board = sweep("leaderboard s --format json");
  ASSERT_EQ(board.exit_code, 0) << board.err;
  json rows = json::parse(board.out);
  ASSERT_EQ(rows.size(), 1u) << board.out;
  ASSERT_TRUE(rows[0]["base"].is_number()) << board.out;
  EXPECT_EQ(rows[0]["gain"], 0) << board.out;  // learning rate 0: the adapter never moves
  EXPECT_EQ(rows[0]["val_loss"], rows[0]["base"]);
  EXPECT_GT(rows[0]["step"].get<int>(), 0);  // step 0 is the base, never the job's best
  RunResult table = sweep("leaderboard s");
  EXPECT_NE(table.out.find("no job beat the base model"), std::string::npos) << table.out;

  RunResult best = sweep("best s");
  EXPECT_EQ(best.exit_code, 1) << best.out << best.err;
  EXPECT_EQ(best.out, "");
  EXPECT_NE(best.err.find("no job of sweep 's' beat the base model"), std::string::npos)
      << best.err;
  EXPECT_NE(best.err.find("--allow-no-gain"), std::string::npos) << best.err;

  RunResult anyway = sweep("best s --allow-no-gain");
  EXPECT_EQ(anyway.exit_code, 0) << anyway.err;
  EXPECT_TRUE(fs::is_directory(anyway.out.substr(0, anyway.out.find('\n')))) << anyway.out;
  EXPECT_NE(anyway.err.find("warning: no job of sweep 's' beat the base model"), std::string::npos)
      << anyway.err;

  RunResult status = sweep("status s");
  EXPECT_NE(status.out.find("0 of 1 ranked job(s) beat the base model"), std::string::npos)
      << status.out;
}

// The marked text of a rendering: what lies inside [brackets], concatenated, spaces dropped.
std::string marked(const std::string& text) {
  std::string out;
  int depth = 0;
  for (char c : text) {
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if (depth > 0 && c != ' ' && c != '\n') {
      out += c;
    }
  }
  return out;
}

TEST_F(AdapterEvidence, CheckDataShowMarksExactlyTheSupervisedTokens) {
  json samples = json::array({qa("a", "What colour is the circle?", "red"),
                              qa("b", "How many shapes?", "two or three"),
                              qa("eos", "What colour is the circle?", "red.</s>blue.")});
  samples[1]["conversations"].push_back({{"from", "human"}, {"value", "And the circle?"}});
  samples[1]["conversations"].push_back({{"from", "gpt"}, {"value", "blue"}});
  write_data("show.json", samples);
  RunResult r = sweep("check-data " + shell_quote(path("show.json")) + " --image-folder " +
                      shell_quote(path("images")) + " --model " + shell_quote(path("model")) +
                      " --show 3 --format json");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // the </s> sample is an error
  json report = json::parse(r.out);
  ASSERT_EQ(report["shown"].size(), 3u) << r.out;
  EXPECT_EQ(report["token_stats"]["max_length"], 512);

  // The same preprocessing the worker uses, on the same tokenizer.
  const sweep::data::Tokenizer tok = sweep::data::Tokenizer::load(path("model"));
  const std::vector<sweep::data::Sample> parsed = sweep::data::load_llava_json(path("show.json"));
  for (size_t i = 0; i < parsed.size(); ++i) {
    const sweep::data::TokenizedSample t = sweep::data::tokenize_sample(parsed[i], tok, false, 512);
    std::string expected;
    std::vector<int64_t> run;
    for (size_t k = 0; k < t.labels.size(); ++k) {
      if (!sweep::data::is_supervised(t.labels[k])) continue;
      if (t.input_ids[k] == tok.eos_id()) {
        expected += tok.decode(run) + "</s>";
        run.clear();
      } else {
        run.push_back(t.input_ids[k]);
      }
    }
    expected += tok.decode(run);
    std::string no_spaces;
    for (char c : expected)
      if (c != ' ') no_spaces += c;
    const std::string text = report["shown"][i]["text"];
    EXPECT_EQ(marked(text), no_spaces) << "sample " << i << ":\n" << text;
  }
  EXPECT_EQ(marked(report["shown"][2]["text"]), "");  // every label masked
  bool eos_reported = false;
  for (const json& p : report["problems"]) {
    if (p["id"] == "eos" && p["kind"] == "tokenization_mismatch") eos_reported = true;
  }
  EXPECT_TRUE(eos_reported) << r.out;

  RunResult table =
      sweep("check-data " + shell_quote(path("show.json")) + " --image-folder " +
            shell_quote(path("images")) + " --model " + shell_quote(path("model")) + " --show 1");
  EXPECT_NE(table.out.find("=== sample 0 (id a)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ASSISTANT:["), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("\033["), std::string::npos);  // not a terminal: brackets, no colour
}

}  // namespace
