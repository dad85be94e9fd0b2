// The live block of `sweep run`: each running job's latest evaluation beside its loss.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "orchestrator/run/live_display.h"
#include "tests/report/report_world.h"

namespace sweep {
namespace {

RunningJob running_job(int64_t id, int64_t step) {
  RunningJob job;
  job.job_id = id;
  job.hash = "abcdef0123";
  job.params_json = "{\"lora_r\":8}";
  job.progress.step = step;
  job.progress.max_steps = 40;
  job.progress.train_loss = 1.5;
  return job;
}

TEST(LiveLine, ShowsTheLatestEvaluationBesideTheLoss) {
  const LatestEval eval{"val_loss", 20, 1.3012};
  const std::string line = format_job_line(running_job(1, 25), 0, &eval);
  EXPECT_NE(line.find("loss 1.5000 val_loss 1.3012@20"), std::string::npos) << line;
  EXPECT_EQ(format_job_line(running_job(1, 25), 0).find("val_loss"), std::string::npos);
}

TEST(LiveLine, TheDisplayReadsEvaluationsFromTheStoreButNotTheBaseScore) {
  auto w = testing::make_report_world();
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    LiveDisplay display(/*tty=*/true, 4, out);
    display.show_evals(*w.store, "val_loss");
    display.on_tick({running_job(w.ids[1], 40), running_job(w.ids[3], 3)}, {});
  }
  std::rewind(out);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, out)) text += buf;
  std::fclose(out);
  EXPECT_NE(text.find("val_loss 1.2000@40"), std::string::npos) << text;
  // The failed job has only the step-0 evaluation: nothing is shown for it.
  EXPECT_EQ(text.find("@0"), std::string::npos) << text;
}

}  // namespace
}  // namespace sweep
