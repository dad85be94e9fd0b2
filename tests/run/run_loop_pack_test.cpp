// Packed workers (resources.pack): compatible jobs share one worker process and one slot; each
// member's outcome comes from its own events; one member is stopped through its STOP file; a
// killed pack is retried member by member; a restarted orchestrator re-attaches the whole pack.
#include <filesystem>
#include <fstream>
#include <set>

#include "orchestrator/run/early_stopping.h"
#include "orchestrator/run/run_lock.h"
#include "orchestrator/spec/sweep_spec.h"
#include "protocol/pack.h"
#include "run_loop_fixture.h"

namespace fs = std::filesystem;

namespace sweep::testing {
namespace {

using RunLoopPack = RunLoopTest;

std::set<int> seeds_of(const FakeExecutor::Launch& launch) {
  std::set<int> out;
  for (const JobFile& j : launch.jobs) out.insert(j.params.value("seed", -1));
  return out;
}

// Position of the first line of the loop that contains `text`; -1 when none.
int line_of(const RecordingObserver& observer, const std::string& text) {
  for (size_t i = 0; i < observer.lines.size(); ++i) {
    if (observer.lines[i].find(text) != std::string::npos) return static_cast<int>(i);
  }
  return -1;
}

RunConfig packed(RunConfig c, int pack, int slots) {
  c.resources.pack = pack;
  c.resources.slots = slots;
  return c;
}

TEST_F(RunLoopPack, CompatibleJobsShareOneWorkerProcess) {
  add_jobs(5);
  auto summary = run(packed(config(), 3, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();

  // In queue order: seeds 0-2 in one process, then 3-4.
  ASSERT_EQ(executor_.launches().size(), 2u);
  EXPECT_EQ(seeds_of(executor_.launches()[0]), (std::set<int>{0, 1, 2}));
  EXPECT_EQ(seeds_of(executor_.launches()[1]), (std::set<int>{3, 4}));
  // One argv: the worker, then every member's job.json.
  const LaunchRequest& req = executor_.launches()[0].request;
  ASSERT_EQ(req.argv.size(), 4u);
  for (int seed = 0; seed < 3; ++seed) {
    EXPECT_EQ(fs::path(req.argv[static_cast<size_t>(seed) + 1]).lexically_normal(),
              fs::path(job_json(seed)).lexically_normal());
  }
  EXPECT_EQ(summary->launched, 5);
  EXPECT_EQ(summary->packs, 2);
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 5);

  // Every member's attempt carries its pack's id; the two packs have different ids.
  std::optional<int64_t> first = attempts(0)[0].pack_id;
  ASSERT_TRUE(first.has_value());
  for (int seed : {1, 2}) EXPECT_EQ(attempts(seed)[0].pack_id, first);
  std::optional<int64_t> second = attempts(3)[0].pack_id;
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*second, *first);
  EXPECT_EQ(attempts(4)[0].pack_id, second);
  for (int seed = 0; seed < 5; ++seed) {
    EXPECT_EQ(attempts(seed)[0].exit_code, 0);
    EXPECT_EQ(attempts(seed)[0].pid, executor_.launches()[seed < 3 ? 0 : 1].pid);
  }
  auto latest = *store_->latest_pack_ids(sweep_id_);
  EXPECT_EQ(latest.size(), 5u);
  EXPECT_EQ(latest.at(job_id(4)), *second);
}

TEST_F(RunLoopPack, PackOfOneIsTodaysLoneWorker) {
  add_jobs(3);
  auto summary = run(config());  // pack: 1
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(executor_.launches().size(), 3u);
  EXPECT_EQ(summary->packs, 0);
  for (int seed = 0; seed < 3; ++seed) EXPECT_FALSE(attempts(seed)[0].pack_id.has_value());
}

TEST_F(RunLoopPack, IncompatibleJobsAreNeverPacked) {
  const std::vector<nlohmann::json> params = {{{"seed", 0}, {"model_max_length", 2048}},
                                              {{"seed", 1}, {"model_max_length", 512}},
                                              {{"seed", 2}, {"model_max_length", 2048}},
                                              {{"seed", 3}, {"model_max_length", 512}},
                                              {{"seed", 4}, {"mode", "full"}},
                                              {{"seed", 5}, {"lora_vision_tower", true}},
                                              {{"seed", 6}, {"lora_r", 64}}};
  std::vector<NewJob> jobs;
  for (size_t i = 0; i < params.size(); ++i)
    jobs.push_back(NewJob{"job" + std::to_string(i), static_cast<int>(i), params[i].dump(), 2.0});
  ASSERT_TRUE(store_->upsert_jobs(sweep_id_, jobs).ok());
  std::vector<JobRecord> recorded = *store_->list_jobs(sweep_id_);
  for (const JobRecord& j : recorded) job_ids_.push_back(j.id);

  auto summary = run(packed(config(), 8, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  // Seed 6 differs only in an adapter-local key (lora_r): it joins seeds 0 and 2.
  ASSERT_EQ(executor_.launches().size(), 4u);
  EXPECT_EQ(seeds_of(executor_.launches()[0]), (std::set<int>{0, 2, 6}));
  EXPECT_EQ(seeds_of(executor_.launches()[1]), (std::set<int>{1, 3}));
  EXPECT_EQ(seeds_of(executor_.launches()[2]), (std::set<int>{4}));
  EXPECT_EQ(seeds_of(executor_.launches()[3]), (std::set<int>{5}));
  for (const auto& launch : executor_.launches()) {
    for (const JobFile& j : launch.jobs) EXPECT_EQ(pack_mismatch(launch.jobs[0], j), std::nullopt);
  }
  EXPECT_FALSE(attempts(4)[0].pack_id.has_value());
  EXPECT_FALSE(attempts(5)[0].pack_id.has_value());
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 7);
}

TEST_F(RunLoopPack, APackOccupiesOneSlotUntilItsProcessExits) {
  add_jobs(6);
  // Seed 0 ends at 2 s, its mate at 6 s: the slot stays taken until the process is gone.
  script_ = [](const JobFile& job) {
    return WorkerScript::succeeding(seed_of(job) % 2 == 0 ? 2 : 6);
  };
  auto summary = run(packed(config(), 2, 2));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  ASSERT_EQ(executor_.launches().size(), 3u);
  EXPECT_EQ(executor_.peak_running(), 2);
  const auto& launches = executor_.launches();
  EXPECT_EQ(launches[0].at, launches[1].at);
  // Seed 0 succeeded long before its process ended; the third pack waited for a process.
  ASSERT_TRUE(executor_.seen_ending(launches[0].pid).has_value());
  EXPECT_GE(line_of(observer_, "job job0 succeeded"), 0);
  EXPECT_LT(line_of(observer_, "job job0 succeeded"), line_of(observer_, "job job1 succeeded"));
  EXPECT_GE(launches[2].at, *executor_.seen_ending(launches[0].pid));
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 6);
}

// Rungs at 100 and 200 tokens, keeping the best half.
EarlyStoppingSpec asha_spec() {
  EarlyStoppingSpec es;
  es.rule = EarlyStoppingSpec::Rule::kAsha;
  es.objective = Objective{"val_loss", Objective::Mode::kMin};
  es.grace_tokens = 100;
  es.reduction_factor = 2;
  return es;
}

// 6 steps of 50 tokens, an eval at rung 0 (step 2) with `val_loss`, finished at 6 s.
WorkerScript rung_worker(double val_loss) {
  WorkerScript w = WorkerScript::training(6);
  EvalEvent e;
  e.step = 2;
  e.tokens_seen = 100;
  e.samples_seen = 8;
  e.metrics = {{"val_loss", val_loss}};
  w.emit(2, e);
  FinishedEvent finished;
  finished.step = 6;
  w.emit(6, finished);
  return w.exit(6, 0);
}

TEST_F(RunLoopPack, EarlyStoppingPrunesOneMemberThroughItsStopFile) {
  add_jobs(2);
  script_ = [](const JobFile& job) { return rung_worker(seed_of(job) == 0 ? 1.0 : 2.0); };
  RunConfig c = packed(config(), 2, 1);
  c.early_stopping = asha_spec();
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();

  ASSERT_EQ(executor_.launches().size(), 1u);
  const int64_t pid = executor_.launches()[0].pid;
  // Seed 1 is the worse of two at rung 0: stopped alone, through its STOP file, no signal.
  EXPECT_TRUE(executor_.signals_to(pid).empty());
  EXPECT_TRUE(fs::exists(job(1).run_dir + "/STOP"));
  EXPECT_FALSE(fs::exists(job(0).run_dir + "/STOP"));
  EXPECT_EQ(job(1).state, JobState::kPruned);
  EXPECT_EQ(attempts(1)[0].exit_code, 0);
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_GE(line_of(observer_, "job job1 pruned"), 0);
  EXPECT_LT(line_of(observer_, "job job1 pruned"), line_of(observer_, "job job0 succeeded"));
  // It stopped at a step boundary soon after its rung, long before its max_steps.
  auto info = nlohmann::json::parse(job(1).info_json);
  EXPECT_LT(info.at("stopped").at("step").get<int>(), 6);
}

TEST_F(RunLoopPack, AMemberPastMaxJobTimeIsStoppedAloneThroughItsStopFile) {
  add_jobs(3);
  // Seed 1 would train for 100 s; the others finish at 8 s, within max_job_time.
  script_ = [](const JobFile& job) {
    return seed_of(job) == 1 ? WorkerScript::training(100) : WorkerScript::succeeding(8);
  };
  RunConfig c = packed(config(), 3, 1);
  c.max_job_time_s = 10;
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  ASSERT_EQ(executor_.launches().size(), 1u);
  EXPECT_TRUE(executor_.signals_to(executor_.launches()[0].pid).empty());
  EXPECT_TRUE(fs::exists(job(1).run_dir + "/STOP"));
  EXPECT_EQ(job(1).state, JobState::kFailed);
  EXPECT_EQ(job(1).error, "ran past max_job_time (10 s)");
  EXPECT_EQ(attempts(1)[0].exit_code, 0);  // it stopped cleanly
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(2).state, JobState::kSucceeded);
}

TEST_F(RunLoopPack, APackWhoseMembersIgnoreTheirStopFilesGetsSigterm) {
  add_jobs(2);
  script_ = [](const JobFile&) { return WorkerScript::training(100).ignore_term(); };
  RunConfig c = packed(config(), 2, 1);
  c.max_job_time_s = 10;
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  // STOP files at ~11 s, SIGTERM after the 5 s grace, SIGKILL 5 s after that.
  auto signals = executor_.signals_to(executor_.launches()[0].pid);
  ASSERT_EQ(signals.size(), 2u);
  EXPECT_FALSE(signals[0].kill);
  EXPECT_TRUE(signals[1].kill);
  EXPECT_EQ(job(0).state, JobState::kFailed);
  EXPECT_EQ(job(1).state, JobState::kFailed);
}

TEST_F(RunLoopPack, StaleStopFileIsRemovedBeforeALaunch) {
  add_jobs(2);
  for (int seed : {0, 1}) {
    fs::create_directories(sweep_dir() + "/" + job(seed).hash);
    std::ofstream(sweep_dir() + "/" + job(seed).hash + "/STOP") << "stop\n";
  }
  auto summary = run(packed(config(), 2, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 2);
  EXPECT_FALSE(fs::exists(job(0).run_dir + "/STOP"));
}

TEST_F(RunLoopPack, ADivergedMemberEndsDivergedWhileTheOthersSucceed) {
  add_jobs(3);
  script_ = [](const JobFile& job) {
    return seed_of(job) == 1 ? WorkerScript::failing(2, "loss is NaN", /*diverged=*/true)
                             : WorkerScript::succeeding(5);
  };
  auto summary = run(packed(config(), 3, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  ASSERT_EQ(executor_.launches().size(), 1u);
  EXPECT_EQ(job(1).state, JobState::kDiverged);
  EXPECT_EQ(attempts(1)[0].exit_code, 3);
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(2).state, JobState::kSucceeded);
  EXPECT_EQ(attempts(0)[0].exit_code, 0);
}

TEST_F(RunLoopPack, MemberExitCodesComeFromTheirOwnFinalEvents) {
  add_jobs(3);
  script_ = [](const JobFile& job) {
    WorkerScript w = WorkerScript::training(2);
    if (seed_of(job) == 0) w.emit(2, FailedEvent{"load_data", "no such file", false});
    if (seed_of(job) == 1) w.emit(2, FailedEvent{"train", "CUDA error", false});
    if (seed_of(job) == 2) return WorkerScript::succeeding(4);
    return w.exit(2, 2);
  };
  auto summary = run(packed(config(), 3, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(attempts(0)[0].exit_code, 1);
  EXPECT_EQ(attempts(1)[0].exit_code, 2);
  EXPECT_EQ(attempts(2)[0].exit_code, 0);
  EXPECT_EQ(job(0).state, JobState::kFailed);
  EXPECT_EQ(job(0).error, "load_data: no such file");
  EXPECT_EQ(job(2).state, JobState::kSucceeded);
}

TEST_F(RunLoopPack, KilledPackRetriesEveryMemberWhichResumes) {
  add_jobs(3);
  // Attempt 1: the process is killed at 3 s (SIGKILL: 137) before any job wrote a final event.
  script_ = [](const JobFile& job) {
    if (job.attempt > 1) return WorkerScript::succeeding(3);
    WorkerScript w = WorkerScript::training(10);
    return seed_of(job) == 0 ? w.exit(3, 137) : w;
  };
  RunConfig c = packed(config(), 3, 1);
  c.retries = 1;
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  ASSERT_EQ(executor_.launches().size(), 2u);
  EXPECT_EQ(seeds_of(executor_.launches()[1]), (std::set<int>{0, 1, 2}));
  for (int seed = 0; seed < 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto a = attempts(seed);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].state, "failed");
    EXPECT_EQ(a[0].exit_code, 137);
    EXPECT_EQ(a[1].state, "succeeded");
    EXPECT_NE(a[0].pack_id, a[1].pack_id);
    EXPECT_EQ(job(seed).state, JobState::kSucceeded);
    // The retry resumes from the job's own checkpoint.
    EXPECT_TRUE(launches_of(seed)[1].jobs.at(0).resume);
    const std::vector<FakeExecutor::Launch> launches = launches_of(seed);
    for (const JobFile& j : launches[1].jobs) EXPECT_EQ(j.attempt, 2);
  }
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 3);
}

TEST_F(RunLoopPack, RestartReattachesThePackWithoutALaunch) {
  add_jobs(3);
  write_job_file(0);
  write_job_file(1);
  // What a `sweep run` killed with -9 left: a pack process of seeds 0 and 1, recorded as such.
  const int64_t pid = executor_.adopt_pack(
      {job_json(0), job_json(1)}, {WorkerScript::succeeding(3), WorkerScript::succeeding(5)},
      /*started_at=*/clock_.now());
  auto pack_id = store_->start_pack_attempts(
      {{job_id(0), sweep_dir() + "/" + job(0).hash}, {job_id(1), sweep_dir() + "/" + job(1).hash}},
      pid, host_name(), "cpu");
  ASSERT_TRUE(pack_id.ok());

  auto summary = run(packed(config(), 2, 1));
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->reattached, 2);
  EXPECT_TRUE(launches_of(0).empty());
  EXPECT_TRUE(launches_of(1).empty());
  for (int seed : {0, 1}) {
    ASSERT_EQ(attempts(seed).size(), 1u);
    EXPECT_EQ(attempts(seed)[0].pack_id, *pack_id);
    EXPECT_EQ(job(seed).state, JobState::kSucceeded);
  }
  // The re-attached pack held the only slot: seed 2 started after the process was gone.
  ASSERT_EQ(launches_of(2).size(), 1u);
  EXPECT_GE(launches_of(2)[0].at, *executor_.seen_ending(pid));
  EXPECT_TRUE(executor_.signals_to(pid).empty());
}

TEST_F(RunLoopPack, RestartKeepsAPackWhoseFirstMemberIsRequeued) {
  add_jobs(2);
  write_job_file(0);
  write_job_file(1);
  // Seed 0 failed before the crash and waits to be retried; the pack process still trains seed 1.
  const int64_t pid = executor_.adopt_pack(
      {job_json(0), job_json(1)}, {WorkerScript::failing(1, "boom"), WorkerScript::succeeding(5)},
      /*started_at=*/clock_.now());
  ASSERT_TRUE(store_
                  ->start_pack_attempts({{job_id(0), sweep_dir() + "/" + job(0).hash},
                                         {job_id(1), sweep_dir() + "/" + job(1).hash}},
                                        pid, host_name(), "cpu")
                  .ok());
  ASSERT_TRUE(store_->finish_attempt(job_id(0), JobState::kPending, 2, "train: boom").ok());
  RunConfig c = packed(config(), 2, 2);
  c.retries = 1;
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  // The pack process was not taken for an unrecorded worker of seed 0 and killed.
  EXPECT_TRUE(executor_.signals_to(pid).empty());
  EXPECT_EQ(job(1).state, JobState::kSucceeded);
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(launches_of(0).size(), 1u);
}

TEST_F(RunLoopPack, CtrlCStopsEveryMemberWithOneSignal) {
  add_jobs(2);
  script_ = [](const JobFile&) { return WorkerScript::training(100); };
  RunConfig c = packed(config(), 2, 1);
  RunLoop loop(*store_, executor_, c, &observer_, clock_);
  double stop_at = clock_.now() + 3;
  bool asked = false;
  clock_.set_on_wait([&](double now) {
    if (now >= stop_at && !asked) {
      asked = true;
      loop.request_stop();
    }
  });
  auto summary = loop.run();
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  ASSERT_EQ(executor_.launches().size(), 1u);
  EXPECT_EQ(executor_.signals_to(executor_.launches()[0].pid).size(), 1u);
  EXPECT_EQ(job(0).state, JobState::kPending);
  EXPECT_EQ(job(1).state, JobState::kPending);
  EXPECT_EQ(attempts(0)[0].exit_code, 0);
}

TEST_F(RunLoopPack, PackIdsAreUniqueInTheDatabaseAcrossSweeps) {
  add_jobs(2);
  int64_t other = *store_->upsert_sweep("other", root_ + "/o.yaml", "{}", "val_loss", "min");
  ASSERT_TRUE(
      store_->upsert_jobs(other, {NewJob{"o0", 0, "{}", 2.0}, NewJob{"o1", 1, "{}", 2.0}}).ok());
  std::vector<JobRecord> others = *store_->list_jobs(other);
  auto first = store_->start_pack_attempts({{job_id(0), "/r/0"}, {job_id(1), "/r/1"}}, 11,
                                           host_name(), "cpu");
  auto second = store_->start_pack_attempts({{others[0].id, "/r/o0"}, {others[1].id, "/r/o1"}}, 12,
                                            host_name(), "cpu");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(*second, 2);
  EXPECT_EQ(attempts(1)[0].pack_id, 1);
  EXPECT_EQ(attempts(1)[0].pid, 11);
  EXPECT_EQ(job(1).state, JobState::kRunning);
  EXPECT_EQ((*store_->attempts(others[1].id))[0].pack_id, 2);
  // Only the sweep's own jobs, by their latest attempt.
  EXPECT_EQ(*store_->latest_pack_ids(other),
            (std::map<int64_t, int64_t>{{others[0].id, 2}, {others[1].id, 2}}));
  ASSERT_TRUE(store_->finish_attempt(job_id(0), JobState::kPending, 2, "boom").ok());
  ASSERT_TRUE(store_->start_attempt(job_id(0), 13, host_name(), "cpu", "/r/0").ok());
  EXPECT_EQ(*store_->latest_pack_ids(sweep_id_), (std::map<int64_t, int64_t>{{job_id(1), 1}}));
}

TEST(PackSpec, ResourcesPackIsAnIntegerFromOneTo64) {
  const std::string head =
      "name: t\nbase_model: builtin:tiny-llava\ndata:\n  train: builtin:shapes/vqa_train.json\n"
      "  val: builtin:shapes/vqa_val.json\n  image_folder: builtin:shapes/images\n";
  auto spec = parse_sweep_spec(head + "resources: {slots: 2, pack: 4}\n", "t.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error().to_string();
  EXPECT_EQ(spec->resources.pack, 4);
  EXPECT_EQ(parse_sweep_spec(head, "t.yaml")->resources.pack, 1);
  auto zero = parse_sweep_spec(head + "resources: {pack: 0}\n", "t.yaml");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "t.yaml:7:19: resources.pack = 0: must be an integer >= 1");
  auto big = parse_sweep_spec(head + "resources: {pack: 65}\n", "t.yaml");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message,
            "t.yaml:7:19: resources.pack = 65: must be an integer from 1 to 64");
  auto text = parse_sweep_spec(head + "resources: {pack: two}\n", "t.yaml");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().message, "t.yaml:7:19: resources.pack = two: must be an integer >= 1");
  auto typo = parse_sweep_spec(head + "resources: {pakc: 2}\n", "t.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.error().hint, "did you mean pack?");
}

}  // namespace
}  // namespace sweep::testing
