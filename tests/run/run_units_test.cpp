// Unit tests of the run loop's pieces that need no processes: slots, event ingestion into an
// in-memory store, and the run lock. (The retry rules are tested in run_loop_retry_test.cpp.)
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "orchestrator/run/ingestor.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/run/scheduler.h"

namespace sweep {
namespace {

TEST(Scheduler, GpuSlotsSpreadOverGpusBeforeDoublingUp) {
  ResourceSpec r;
  r.gpus = {0, 1};
  r.jobs_per_gpu = 2;
  Scheduler s(r);
  ASSERT_EQ(s.slots().size(), 4u);
  EXPECT_EQ(s.slots()[0].gpu, 0);
  EXPECT_EQ(s.slots()[1].gpu, 1);
  EXPECT_EQ(s.slots()[2].gpu, 0);
  EXPECT_EQ(s.slots()[1].device(), "cuda:1");
}

TEST(Scheduler, CpuSlotsAreHandedOutUntilAllAreBusy) {
  ResourceSpec r;
  r.slots = 2;
  Scheduler s(r);
  s.free_slot()->job_id = 10;
  s.free_slot()->job_id = 11;
  EXPECT_EQ(s.free_slot(), nullptr);
  s.release(10);
  ASSERT_NE(s.free_slot(), nullptr);
  EXPECT_EQ(s.free_slot()->device(), "cpu");
  EXPECT_EQ(s.busy(), 1);
}

class IngestorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ingest-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    events_ = (dir_ / "events.jsonl").string();
    std::filesystem::remove(events_);
    store_ = std::move(Store::open(":memory:").value());
    sweep_ = *store_->upsert_sweep("s", "s.yaml", "{}", "val_loss", "min");
    ASSERT_TRUE(store_->upsert_jobs(sweep_, {NewJob{"h1", 0, "{}", 2.0}}).ok());
    job_ = (*store_->list_jobs(sweep_))[0].id;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string events_;
  std::vector<std::string> column(const std::string& sql) {
    auto rows = store_->query_readonly(sql);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    std::vector<std::string> out;
    if (rows.ok()) {
      for (const auto& r : rows->rows) out.push_back(r.at(0).value_or("NULL"));
    }
    return out;
  }
  std::unique_ptr<Store> store_;
  int64_t sweep_ = 0;
  int64_t job_ = 0;
};

TEST_F(IngestorTest, RereadingTheFileFromTheStartAddsNothing) {
  {
    EventWriter w(events_, 1);
    w.emit(StartedEvent{});
    for (int s = 1; s <= 3; ++s) w.emit(ProgressEvent{s, {{"train_loss", 1.0 / s}}});
    w.emit(EvalEvent{3, {{"val_loss", 0.5}}, 16, 2.5});
    FinishedEvent finished;
    finished.step = 3;
    w.emit(finished);
  }
  Ingestor first(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*first.poll(), 6);
  ASSERT_TRUE(first.progress().final_event.has_value());
  EXPECT_NE(first.progress().final_event->as<FinishedEvent>(), nullptr);
  JobRecord job = *store_->get_job(job_);
  EXPECT_EQ(job.last_seq, 6);
  // From offset 0 but with the stored last_seq: every event is skipped.
  Ingestor again(*store_, job_, 1, events_, 0, job.last_seq);
  EXPECT_EQ(*again.poll(), 0);
  // Even ignoring the cursor entirely, rows are keyed: still three loss values.
  Ingestor blind(*store_, job_, 1, events_, 0, 0);
  EXPECT_EQ(*blind.poll(), 6);
  EXPECT_EQ(store_->metric_curve(job_, "train_loss")->size(), 3u);
  EXPECT_EQ(store_->evals(job_)->size(), 1u);
}

TEST_F(IngestorTest, KeptPredictionsOfAnEvalBecomeRows) {
  {
    EventWriter w(events_, 1);
    EvalEvent eval{5, {{"val_loss", 0.5}}, 16, 2.5};
    eval.predictions = {{0, "val-1", "<image>\nWhat shape?", "circle", "circle"},
                        {1, "val-2", "<image>\nWhat colour?", "red", "blue"}};
    w.emit(eval);
  }
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 1);
  EXPECT_EQ(column("SELECT prediction FROM predictions WHERE step = 5 ORDER BY sample"),
            (std::vector<std::string>{"circle", "blue"}));
  EXPECT_EQ(column("SELECT reference FROM predictions ORDER BY sample"),
            (std::vector<std::string>{"circle", "red"}));
}

TEST_F(IngestorTest, UnreadableLinesAreCountedInTheJobsInfoAcrossRestarts) {
  {
    std::ofstream out(events_);
    out << R"({"seq":1,"type":"heartbeat","step":1})"
        << "\n"
        << "garbage\n"
        << R"({"seq":2,"type":"progress","step":"x"})"
        << "\n";
  }
  Ingestor first(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*first.poll(), 1);
  EXPECT_EQ(first.progress().malformed_count, 2);
  auto info = nlohmann::json::parse(store_->get_job(job_)->info_json);
  EXPECT_EQ(info[Ingestor::kUnreadableKey]["count"], 2);
  EXPECT_EQ(info[Ingestor::kUnreadableKey]["last"].get<std::string>().rfind(events_ + ":3: ", 0),
            0u);
  // Only garbage appended: the cursor still moves and the count grows, and an ingestor started
  // from the saved cursor (a restarted orchestrator) adds to it without reading old lines again.
  { std::ofstream(events_, std::ios::app) << "{\n"; }
  ASSERT_EQ(*first.poll(), 0);
  JobRecord job = *store_->get_job(job_);
  { std::ofstream(events_, std::ios::app) << "]\n"; }
  Ingestor restarted(*store_, job_, 1, events_, job.events_offset, job.last_seq);
  ASSERT_EQ(*restarted.poll(), 0);
  info = nlohmann::json::parse(store_->get_job(job_)->info_json);
  EXPECT_EQ(info[Ingestor::kUnreadableKey]["count"], 4);
  EXPECT_EQ(info[Ingestor::kUnreadableKey]["last"], events_ + ":5: not a JSON object");
}

TEST_F(IngestorTest, NullLossMarksTheAttemptNonFinite) {
  {
    EventWriter w(events_, 1);
    w.emit(ProgressEvent{1, {{"train_loss", std::nan("")}}});
  }
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 1);
  EXPECT_TRUE(in.progress().nonfinite_loss);
}

TEST_F(IngestorTest, FinalEventOfAnEarlierAttemptDoesNotEndTheCurrentOne) {
  {
    EventWriter w(events_, 1);
    w.emit(FailedEvent{"train", "boom", false});
  }
  {
    EventWriter w(events_, 2);
    w.emit(ProgressEvent{4, {{"train_loss", 0.3}}});
  }
  Ingestor in(*store_, job_, 2, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 2);
  EXPECT_FALSE(in.progress().final_event.has_value());
  EXPECT_EQ(in.progress().step, 4);
}

TEST_F(IngestorTest, OnlyMetricsBecomeRowsNotTheEvalBookkeeping) {
  {
    // An eval line as the worker wrote it before typed events, then a typed one.
    std::ofstream(events_) << R"({"seq":1,"time":1.0,"type":"eval","attempt":1,"step":0,)"
                           << R"("val_loss":2.0,"val_token_acc":0.1,"val_exact_match":0.0,)"
                           << R"("val_samples":3,"seconds":0.5})"
                           << "\n";
    EventWriter w(events_, 1);
    w.emit(ProgressEvent{4, {{"train_loss", 1.5}, {"lr", 1e-4}, {"mem_mb", 100}}});
    w.emit(EvalEvent{
        4, {{"val_loss", 1.25}, {"val_token_acc", 0.5}, {"val_exact_match", 0.25}}, 200, 12.5});
  }
  ASSERT_TRUE(store_->start_attempt(job_, 1, "h", "cpu", dir_.string()).ok());
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 3);
  EXPECT_EQ(column("SELECT DISTINCT name FROM eval_metrics ORDER BY name"),
            (std::vector<std::string>{"val_exact_match", "val_loss", "val_token_acc"}));
  EXPECT_EQ(column("SELECT name FROM metrics ORDER BY name"),
            (std::vector<std::string>{"lr", "mem_mb", "train_loss"}));
  // So the leaderboard shows no val_samples or seconds column.
  auto board = store_->leaderboard(sweep_, "val_loss", false);
  ASSERT_TRUE(board.ok()) << board.error().message;
  ASSERT_EQ(board->size(), 1u);
  EXPECT_EQ((*board)[0].best_step, 4);
  EXPECT_EQ((*board)[0].metrics,
            (std::map<std::string, double>{
                {"val_exact_match", 0.25}, {"val_loss", 1.25}, {"val_token_acc", 0.5}}));
}

TEST_F(IngestorTest, CheckpointsTheWorkerDeletedAreNoLongerKept) {
  const std::string a = (dir_ / "step-2").string(), b = (dir_ / "step-4").string(),
                    c = (dir_ / "step-6").string();
  {
    EventWriter w(events_, 1);
    w.emit(EvalEvent{2, {{"val_loss", 0.5}}, std::nullopt, std::nullopt});
    w.emit(CheckpointEvent{2, a, {{"val_loss", 0.5}}, {}});
    w.emit(EvalEvent{4, {{"val_loss", 0.9}}, std::nullopt, std::nullopt});
    w.emit(CheckpointEvent{4, b, {{"val_loss", 0.9}}, {a}});
    // save_top_k: 0 keeps only the latest; a path that was never recorded is no error.
    w.emit(CheckpointEvent{6, c, {}, {b, (dir_ / "never-recorded").string()}});
  }
  ASSERT_TRUE(store_->start_attempt(job_, 1, "h", "cpu", dir_.string()).ok());
  auto kept = [&] {
    std::map<std::string, bool> out;
    auto rows = store_->checkpoints(job_);
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (const CheckpointRow& r : *rows) out[r.path] = r.kept;
    }
    return out;
  };
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 5);
  EXPECT_EQ(kept(), (std::map<std::string, bool>{{a, false}, {b, false}, {c, true}}));
  EXPECT_EQ(column("SELECT COUNT(*) FROM checkpoints WHERE deleted_at IS NOT NULL"),
            std::vector<std::string>{"2"});
  // Re-reading the whole file ends in the same state.
  Ingestor blind(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*blind.poll(), 5);
  EXPECT_EQ(kept(), (std::map<std::string, bool>{{a, false}, {b, false}, {c, true}}));
  // The best evaluation (step 2) has no kept checkpoint: the leaderboard shows none.
  auto board = store_->leaderboard(sweep_, "val_loss", false);
  ASSERT_TRUE(board.ok());
  ASSERT_EQ(board->size(), 1u);
  EXPECT_EQ((*board)[0].best_step, 2);
  EXPECT_EQ((*board)[0].checkpoint_path, "");
}

TEST_F(IngestorTest, MalformedLinesAreSkippedAndReportedWithTheirLine) {
  {
    std::ofstream(events_) << R"({"seq":1,"type":"progress","step":"one","train_loss":1.0})"
                           << "\n";
    EventWriter w(events_, 1);
    w.emit(ProgressEvent{2, {{"train_loss", 0.5}}});
  }
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 1);
  EXPECT_EQ(in.last_seq(), 2);
  EXPECT_EQ(in.progress().malformed_count, 1);
  ASSERT_TRUE(in.progress().last_malformed.has_value());
  EXPECT_EQ(
      in.progress().last_malformed->message,
      events_ +
          ":1: seq 1: progress event: field 'step' must be an integer, not the string \"one\"");
  EXPECT_EQ(in.progress().step, 2);
}

TEST_F(IngestorTest, FinalEventsAreStoredAsTypedJobInfo) {
  {
    EventWriter w(events_, 1);
    StartedEvent started;
    started.pid = 77;
    started.resumed_from_step = 4;
    w.emit(started);
    w.emit(FailedEvent{"train", "loss is NaN", true});
  }
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 2);
  const auto* failed = in.progress().final_event->as<FailedEvent>();
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(failed->diverged);
  auto info = nlohmann::json::parse(store_->get_job(job_)->info_json);
  EXPECT_EQ(info["started"]["resumed_from_step"], 4);
  EXPECT_EQ(info["started"]["pid"], 77);
  EXPECT_EQ(info["failed"]["message"], "loss is NaN");
  EXPECT_EQ(info["failed"]["seq"], 2);
}

TEST(RunLock, SecondHolderIsRefusedWithTheFirstHoldersPid) {
  std::string path =
      (std::filesystem::temp_directory_path() / ("lock-" + std::to_string(::getpid())) / ".lock")
          .string();
  auto first = RunLock::acquire(path);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = RunLock::acquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().kind, ErrorKind::kConflict);
  EXPECT_NE(second.error().message.find("process " + std::to_string(::getpid())), std::string::npos)
      << second.error().message;
  EXPECT_EQ(RunLock::holder_pid(path), ::getpid());
  first->reset();
  EXPECT_EQ(RunLock::holder(path), "");
  EXPECT_TRUE(RunLock::acquire(path).ok());
}

}  // namespace
}  // namespace sweep
