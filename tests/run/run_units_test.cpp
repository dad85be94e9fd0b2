// Unit tests of the run loop's pieces that need no processes: slots, event ingestion into an
// in-memory store, and the run lock. (The retry rules are tested in run_loop_retry_test.cpp.)
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
    int64_t sweep = *store_->upsert_sweep("s", "s.yaml", "{}", "val_loss", "min");
    ASSERT_TRUE(store_->upsert_jobs(sweep, {NewJob{"h1", 0, "{}", 2.0}}).ok());
    job_ = (*store_->list_jobs(sweep))[0].id;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string events_;
  std::unique_ptr<Store> store_;
  int64_t job_ = 0;
};

TEST_F(IngestorTest, RereadingTheFileFromTheStartAddsNothing) {
  {
    EventWriter w(events_, 1);
    w.emit("started", {{"pid", 1}});
    for (int s = 1; s <= 3; ++s) w.emit("progress", {{"step", s}, {"train_loss", 1.0 / s}});
    w.emit("eval", {{"step", 3}, {"val_loss", 0.5}});
    w.emit("finished", {{"step", 3}});
  }
  Ingestor first(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*first.poll(), 6);
  ASSERT_TRUE(first.progress().final_event.has_value());
  EXPECT_EQ(first.progress().final_event->type, "finished");
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

TEST_F(IngestorTest, NullLossMarksTheAttemptNonFinite) {
  {
    EventWriter w(events_, 1);
    w.emit("progress", {{"step", 1}, {"train_loss", nullptr}});
  }
  Ingestor in(*store_, job_, 1, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 1);
  EXPECT_TRUE(in.progress().nonfinite_loss);
}

TEST_F(IngestorTest, FinalEventOfAnEarlierAttemptDoesNotEndTheCurrentOne) {
  {
    EventWriter w(events_, 1);
    w.emit("failed", {{"stage", "train"}, {"message", "boom"}});
  }
  {
    EventWriter w(events_, 2);
    w.emit("progress", {{"step", 4}, {"train_loss", 0.3}});
  }
  Ingestor in(*store_, job_, 2, events_, 0, 0);
  ASSERT_EQ(*in.poll(), 2);
  EXPECT_FALSE(in.progress().final_event.has_value());
  EXPECT_EQ(in.progress().step, 4);
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
