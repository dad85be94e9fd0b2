// The report of a small real sweep opened in headless Chromium: `sweep run` with the real
// `sweep-worker` on a tiny random LLaVA, `sweep report`, then `chromium --headless --dump-dom`
// (the page's own counts of what it drew, and the errors it caught) and `--screenshot` (kept in
// SWEEP_REPORT_TEST_OUTPUT for a person to look at). Skips without Chromium, except under CI
// (the environment variable CI set), where Chromium must be installed (scripts/install-deps.sh).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "tests/common/cli_run.h"

namespace {

namespace fs = std::filesystem;
using sweep::testing::run_program;
using sweep::testing::RunResult;
using sweep::testing::shell_quote;
using sweep::testing::slurp;

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    RunResult r = run_program("/bin/sh", "-c " + shell_quote(std::string("command -v ") + name),
                              fs::temp_directory_path().string());
    if (r.exit_code == 0 && !r.out.empty()) return r.out.substr(0, r.out.find('\n'));
  }
  return "";
}

bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "0" && std::string(ci) != "false";
}

// The value of `data-NAME="..."` on the page's status element.
std::string status_attr(const std::string& dom, const std::string& name) {
  std::smatch m;
  const std::regex re("id=\"report-status\"[^>]*data-" + name + "=\"([^\"]*)\"");
  return std::regex_search(dom, m, re) ? m[1].str() : "";
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ReportInChromium : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("sweep-report-e2e-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    fs::create_directories(root_ / "scratch");
    out_ = SWEEP_REPORT_TEST_OUTPUT;
    fs::create_directories(out_);
    env_ = "cd " + shell_quote(root_.string()) +
           " && SWEEP_CACHE=" + shell_quote((root_ / "cache").string());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  RunResult run(const std::string& program, const std::string& args) {
    return run_program(program, args, (root_ / "scratch").string(), env_);
  }

  // A tokenizer trained on words of the shapes world and a random tiny LLaVA sized to it.
  void make_model() {
    std::ofstream corpus(root_ / "corpus.txt");
    corpus << "A chat between a curious user and an artificial intelligence assistant. The "
              "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
              "USER: ASSISTANT:\nWhat colour is the circle? red green blue yellow purple orange\n"
              "What shape is the red object? circle square triangle\nHow many shapes are there? "
              "one two three\nWhere is the blue square? left right centre top bottom. Is there a "
              "green triangle? yes no\nDescribe the image.\n";
    corpus.close();
    const std::string model = (root_ / "model").string();
    RunResult init = run(SWEEP_WORKER_BIN,
                         "init-model --preset tiny --vocab-size 400 --out " + shell_quote(model));
    ASSERT_EQ(init.exit_code, 0) << init.err;
    RunResult tok = run(SWEEP_TOKENIZER_BIN, shell_quote((root_ / "corpus.txt").string()) + " " +
                                                 shell_quote(model + "/tokenizer.model") + " 400");
    ASSERT_EQ(tok.exit_code, 0) << tok.err;
  }

  void write_spec() {
    std::ofstream spec(root_ / "tiny.yaml");
    spec << "name: tiny\n"
            "base_model: model\n"
            "data:\n"
            "  train: builtin:shapes/vqa_train.json\n"
            "  val: builtin:shapes/vqa_val.json\n"
            "  image_folder: builtin:shapes/images\n"
            "train: {max_steps: 4, eval_every: 2, eval_samples: 4, batch_size: 2, "
            "max_new_tokens: 4}\n"
            "grid:\n"
            "  lora_r: [2, 4]\n"
            "  lora_alpha: {times: lora_r, values: [2]}\n"
            "  learning_rate: [1.0e-3, 3.0e-3]\n"
            "objective: {metric: val_loss, mode: min}\n"
            "resources: {slots: 2, threads_per_job: 1}\n";
  }

  fs::path root_, out_;
  std::string env_;
};

TEST_F(ReportInChromium, SmallSweepReportRendersEveryPanelWithoutErrors) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    if (under_ci()) FAIL() << "chromium is not installed; scripts/install-deps.sh installs it";
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it); the report "
                    "is not checked in a browser";
  }
  ASSERT_NO_FATAL_FAILURE(make_model());
  write_spec();

  RunResult ran = run(SWEEP_BIN, "run tiny.yaml");
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  // The end of the run: the top of the leaderboard with the gain, and the page's path.
  EXPECT_NE(ran.err.find("top 3 by val_loss (min; base model "), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("(gain "), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("report: runs/tiny/report.html"), std::string::npos) << ran.err;

  const std::string page = (out_ / "report.html").string();
  RunResult report = run(SWEEP_BIN, "report tiny --out " + shell_quote(page));
  ASSERT_EQ(report.exit_code, 0) << report.err;
  ASSERT_TRUE(fs::exists(page));

  const std::string url = "file://" + page;
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars "
      "--user-data-dir=" +
      shell_quote((root_ / "chromium-profile").string()) +
      " --virtual-time-budget=10000 --enable-logging=stderr --v=0 ";
  RunResult dom = run(
      "timeout", "60 " + shell_quote(chromium) + " " + flags + "--dump-dom " + shell_quote(url));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  std::ofstream(out_ / "report.dom.html") << dom.out;

  ASSERT_EQ(status_attr(dom.out, "jobs"), "4") << "the page's script did not finish";
  // No error caught by the page (window.onerror, console.error) and none in Chromium's log.
  EXPECT_EQ(status_attr(dom.out, "errors"), "0");
  EXPECT_EQ(count(dom.out, "id=\"report-errors\" hidden"), 1u) << "errors listed in the page";
  std::regex console_error("CONSOLE.*(Uncaught|Error)");
  EXPECT_FALSE(std::regex_search(dom.err, console_error)) << dom.err;
  // Curves: 4 jobs x (train_loss + val_loss, val_token_acc, val_exact_match).
  EXPECT_EQ(status_attr(dom.out, "charts"), "4");
  EXPECT_EQ(status_attr(dom.out, "curves"), "16");
  // Heatmaps: lora_r x lora_alpha, one panel per learning rate: 2 panels x 2 x 2 cells, of which
  // the linked alpha fills the diagonal.
  EXPECT_EQ(status_attr(dom.out, "heatmap-cells"), "8");
  EXPECT_EQ(count(dom.out, "class=\"hm-cell"), 8u);
  EXPECT_EQ(status_attr(dom.out, "heatmap-filled"), "4");
  // Leaderboard: one row per job.
  EXPECT_EQ(status_attr(dom.out, "leaderboard-rows"), "4");
  EXPECT_EQ(count(dom.out, "<tr data-job="), 4u);
  // The best job's panel is open.
  EXPECT_NE(dom.out.find("id=\"job-params\""), std::string::npos);

  const std::string shot = (out_ / "report.png").string();
  fs::remove(shot);
  RunResult png = run("timeout", "60 " + shell_quote(chromium) + " " + flags +
                                     "--window-size=1400,2600 --screenshot=" + shell_quote(shot) +
                                     " " + shell_quote(url));
  ASSERT_EQ(png.exit_code, 0) << png.err;
  ASSERT_TRUE(fs::exists(shot));
  EXPECT_GT(fs::file_size(shot), 10000u);
}

}  // namespace
