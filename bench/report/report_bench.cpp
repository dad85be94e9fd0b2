// sweep report at scale: a generated sweep of 10,000 jobs and 1,000,000 metric rows (50 steps x
// train_loss and lr per job, plus 6 evaluations of 3 metrics), then the report built from it
// (read + JSON + HTML) and, when Chromium is installed, the time Chromium takes to load and draw
// the page (--dump-dom, minus the same command on an empty page: the browser's own start).
// Usage: report_bench [--jobs N] [--steps N] [--dir DIR] [--chromium PATH] [--reuse 1]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "db/store.h"
#include "orchestrator/report/html.h"
#include "orchestrator/report/report_data.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check(const sweep::Status& s) {
  if (!s.ok()) {
    std::cerr << "report_bench: " << s.error().to_string() << "\n";
    std::exit(2);
  }
}

// 10,000 jobs over lora_r x lora_alpha x learning_rate x batch_size x seed; 3% failed, 10% pruned.
void generate(const std::string& db, int jobs, int steps) {
  fs::remove(db);
  auto store = sweep::Store::open(db);
  if (!store.ok()) check(store.error());
  sweep::Store& s = **store;
  auto sweep_id = s.upsert_sweep("scale", "sweeps/scale.yaml", "{}", "val_loss", "min");
  if (!sweep_id.ok()) check(sweep_id.error());
  std::vector<sweep::NewJob> grid;
  const int ranks[] = {4, 8, 16, 32, 64};
  const double lrs[] = {5e-5, 1e-4, 2e-4, 5e-4};
  for (int i = 0; i < jobs; ++i) {
    const int r = ranks[i % 5], alpha = r * (1 + (i / 5) % 4);
    const double lr = lrs[(i / 20) % 4];
    const int batch = 8 << ((i / 80) % 2), seed = i / 160;
    grid.push_back(
        {"job" + std::to_string(i), i,
         "{\"lora_r\":" + std::to_string(r) + ",\"lora_alpha\":" + std::to_string(alpha) +
             ",\"learning_rate\":" + std::to_string(lr) +
             ",\"batch_size\":" + std::to_string(batch) + ",\"seed\":" + std::to_string(seed) + "}",
         static_cast<double>(alpha) / r});
  }
  if (auto added = s.upsert_jobs(*sweep_id, grid); !added.ok()) check(added.error());
  auto rows = s.list_jobs(*sweep_id);
  if (!rows.ok()) check(rows.error());
  check(s.transaction([&]() -> sweep::Status {
    int n = 0;
    for (const sweep::JobRecord& j : *rows) {
      const bool failed = n % 33 == 0, pruned = !failed && n % 10 == 0;
      const int last = failed ? steps / 3 : (pruned ? steps / 2 : steps);
      const double quality = 0.5 + 0.5 * std::sin(n * 0.37);
      check(s.start_attempt(j.id, 1000 + n, "node", "cuda:0", "/runs/scale/" + j.hash));
      for (int step = 1; step <= steps; ++step) {
        const double loss = step <= last ? 3.0 * std::exp(-step * 0.03 * quality) + 0.3 : NAN;
        if (step > last) break;
        check(s.add_metrics(j.id, 1, step, {{"train_loss", loss}, {"lr", 1e-4}},
                            {step * 16, step * 16 * 900}));
      }
      for (int e = 0; e <= 5; ++e) {
        const int step = e * steps / 5;
        if (step > last) break;
        const double v = 2.0 - 1.2 * quality * e / 5;
        check(s.add_eval(
            j.id, 1, step,
            {{"val_loss", v}, {"val_token_acc", 0.3 + 0.1 * e}, {"val_exact_match", 0.1 * e}},
            {step * 16, step * 16 * 900}));
        if (step > 0) {
          check(s.add_checkpoint(j.id, step,
                                 "/runs/scale/" + j.hash + "/step-" + std::to_string(step), "{}"));
        }
      }
      check(s.finish_attempt(
          j.id,
          failed ? sweep::JobState::kFailed
                 : (pruned ? sweep::JobState::kPruned : sweep::JobState::kSucceeded),
          failed ? std::optional<int>(2) : std::optional<int>(0),
          failed ? "train: CUDA out of memory\nTraceback ..." : ""));
      ++n;
    }
    return sweep::ok_status();
  }));
}

int run_shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Seconds for chromium to load `page` and then do `action`: "--screenshot=FILE" (draws the page)
// or "--dump-dom > FILE" (also serialises the whole document, data included).
double chromium_seconds(const std::string& chromium, const std::string& page,
                        const std::string& action, const std::string& profile) {
  const auto t0 = Clock::now();
  const std::string cmd = "timeout 120 '" + chromium +
                          "' --headless --no-sandbox --disable-gpu --no-first-run "
                          "--window-size=1400,1200 --user-data-dir='" +
                          profile + "' ";
  const size_t redirect = action.find(" >");
  const int code = redirect == std::string::npos
                       ? run_shell(cmd + action + " 'file://" + page + "' >/dev/null 2>&1")
                       : run_shell(cmd + action.substr(0, redirect) + " 'file://" + page + "'" +
                                   action.substr(redirect) + " 2>/dev/null");
  const double s = seconds_since(t0);
  return code == 0 ? s : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 10000, steps = 50;
  std::string dir = (fs::temp_directory_path() / "sweep-report-bench").string();
  std::string chromium = "chromium";
  bool reuse = false;  // --reuse 1: keep DIR/scale.db from an earlier run
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--jobs")
      jobs = std::atoi(argv[i + 1]);
    else if (flag == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (flag == "--dir")
      dir = argv[i + 1];
    else if (flag == "--chromium")
      chromium = argv[i + 1];
    else if (flag == "--reuse")
      reuse = std::string(argv[i + 1]) == "1";
  }
  fs::create_directories(dir);
  const std::string db = dir + "/scale.db";
  auto t0 = Clock::now();
  if (!reuse || !fs::exists(db)) {
    generate(db, jobs, steps);
    std::printf("generated %d jobs in %.1f s\n", jobs, seconds_since(t0));
  }

  auto store = sweep::Store::open_readonly(db);
  if (!store.ok()) check(store.error());
  auto rows = (*store)->query_readonly(
      "SELECT (SELECT COUNT(*) FROM metrics), (SELECT COUNT(*) FROM eval_metrics)");
  if (rows.ok()) {
    std::printf("rows: %s metrics, %s eval_metrics\n", rows->rows[0][0]->c_str(),
                rows->rows[0][1]->c_str());
  }
  auto sweep = (*store)->resolve_sweep("scale");
  if (!sweep.ok()) check(sweep.error());

  t0 = Clock::now();
  auto data = sweep::report::build_report_data(**store, *sweep);
  if (!data.ok()) check(data.error());
  const double t_data = seconds_since(t0);
  t0 = Clock::now();
  const std::string html = sweep::report::render_report_html(*data);
  const std::string page = dir + "/report.html";
  std::ofstream(page) << html;
  const double t_html = seconds_since(t0);
  std::printf("report: data %.2f s + page %.2f s = %.2f s; %.1f MB, %zu points per curve\n", t_data,
              t_html, t_data + t_html, html.size() / 1e6,
              (*data)["limits"]["points_per_curve"].get<size_t>());

  if (run_shell("command -v '" + chromium + "' >/dev/null 2>&1") != 0) {
    std::printf("chromium: not found, render time not measured\n");
    return 0;
  }
  const std::string empty = dir + "/empty.html";
  std::ofstream(empty) << "<!DOCTYPE html><html><body>empty</body></html>";
  const std::string profile = dir + "/profile";
  const double shot_empty =
      chromium_seconds(chromium, empty, "--screenshot=" + dir + "/empty.png", profile);
  const double shot_page =
      chromium_seconds(chromium, page, "--screenshot=" + dir + "/report.png", profile);
  std::printf("chromium --screenshot: empty page %.2f s, report %.2f s: render %.2f s\n",
              shot_empty, shot_page, shot_page - shot_empty);
  const double dump_empty =
      chromium_seconds(chromium, empty, "--dump-dom > " + dir + "/empty.dom", profile);
  const double dump_page =
      chromium_seconds(chromium, page, "--dump-dom > " + dir + "/report.dom", profile);
  std::ifstream dom_in(dir + "/report.dom");
  const std::string dom((std::istreambuf_iterator<char>(dom_in)), std::istreambuf_iterator<char>());
  const bool ready = dom.find(">ready</div>") != std::string::npos;
  std::printf("chromium --dump-dom: empty page %.2f s, report %.2f s: %.2f s (%s)\n", dump_empty,
              dump_page, dump_page - dump_empty,
              ready ? "script finished" : "script did NOT finish");
  // The page's own timing of its script (report-status data-render-ms and data-ms per panel).
  for (const char* attr : {"data-render-ms=\"", "data-ms=\""}) {
    const size_t at = dom.find(attr);
    if (at != std::string::npos) {
      const size_t start = at + std::string(attr).size();
      std::printf("page %s %s\n", attr, dom.substr(start, dom.find('"', start) - start).c_str());
    }
  }
  return 0;
}
