// Early stopping inside the run loop: verdicts exactly as computed by hand, asynchronous
// promotion, the pruned state, decisions that survive an orchestrator crash, and budgets.
#include <cmath>
#include <stdexcept>

#include "orchestrator/run/early_stopping.h"
#include "run_loop_fixture.h"

namespace sweep::testing {
namespace {

using RunLoopEarlyStopping = RunLoopTest;

// Rungs at 100, 200, 400, ... tokens, keeping the best half.
EarlyStoppingSpec asha_spec() {
  EarlyStoppingSpec es;
  es.rule = EarlyStoppingSpec::Rule::kAsha;
  es.objective = Objective{"val_loss", Objective::Mode::kMin};
  es.grace_tokens = 100;
  es.reduction_factor = 2;
  return es;
}

EvalEvent eval_at(int64_t step, int64_t tokens, double val_loss) {
  EvalEvent e;
  e.step = step;
  e.tokens_seen = tokens;
  e.samples_seen = step * 4;
  e.metrics = {{"val_loss", val_loss}};
  return e;
}

// A worker that trains 6 steps of 50 tokens, evaluates at rung 0 (step 2, 100 tokens) and rung 1
// (step 4, 200 tokens) with the given val_loss values, and finishes at 6 s unless stopped.
WorkerScript rung_worker(double rung0, double rung1) {
  WorkerScript w = WorkerScript::training(6);
  w.emit(2, eval_at(2, 100, rung0));
  w.emit(4, eval_at(4, 200, rung1));
  FinishedEvent finished;
  finished.step = 6;
  w.emit(6, finished);
  w.exit(6, 0);
  return w;
}

// An ASHA stop at rung 0 on val_loss, as an earlier run would have recorded it.
RungDecision recorded_stop(int64_t job, int64_t rung_tokens, double value) {
  RungDecision d;
  d.job_id = job;
  d.rung_tokens = d.tokens_seen = rung_tokens;
  d.metric = "val_loss";
  d.value = value;
  d.compared_to = value / 2;
  d.rank = d.peers = 2;
  d.action = "stop";
  d.rule = "asha";
  return d;
}

struct Expected {
  int seed, rung;
  const char* action;
  int rank, peers;
};

TEST_F(RunLoopEarlyStopping, AshaDecidesEachJobAtEachRungAsComputedByHand) {
  add_jobs(4);
  const double rung0[] = {1.0, 0.5, 2.0, 0.8};
  const double rung1[] = {0.9, 0.4, 0.3, 0.85};
  script_ = [&](const JobFile& job) {
    return rung_worker(rung0[seed_of(job)], rung1[seed_of(job)]);
  };
  RunConfig c = config();
  c.early_stopping = asha_spec();
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();

  // Seeds 0 and 1 run first. Seed 0 is alone at each rung when it gets there: it continues
  // without waiting for peers. Seed 1 is the better of two at both rungs. Then seeds 2 and 3:
  // at rung 0, seed 2 is the worst of 3 (keep floor(3/2) = 1: cutoff 0.5) and stops; seed 3 ties
  // the cutoff of 4 values (keep 2: 0.5, 0.8) and continues; at rung 1 it is second of 3 (0.4,
  // 0.85, 0.9), but only the best floor(3/2) = 1 continues (cutoff 0.4), so it stops.
  const Expected expected[] = {{0, 0, "continue", 1, 1}, {1, 0, "continue", 1, 2},
                               {0, 1, "continue", 1, 1}, {1, 1, "continue", 1, 2},
                               {2, 0, "stop", 3, 3},     {3, 0, "continue", 2, 4},
                               {3, 1, "stop", 2, 3}};
  auto decisions = *store_->decisions(sweep_id_);
  ASSERT_EQ(decisions.size(), std::size(expected));
  for (size_t i = 0; i < decisions.size(); ++i) {
    SCOPED_TRACE("decision " + std::to_string(i));
    EXPECT_EQ(decisions[i].job_id, job_id(expected[i].seed));
    EXPECT_EQ(decisions[i].rung, expected[i].rung);
    EXPECT_EQ(decisions[i].action, expected[i].action);
    EXPECT_EQ(decisions[i].rank, expected[i].rank);
    EXPECT_EQ(decisions[i].peers, expected[i].peers);
    EXPECT_EQ(decisions[i].rule, "asha");
    EXPECT_EQ(decisions[i].rung_tokens, expected[i].rung == 0 ? 100 : 200);
  }
  EXPECT_DOUBLE_EQ(decisions[4].compared_to, 0.5);
  EXPECT_DOUBLE_EQ(decisions[5].compared_to, 0.8);
  EXPECT_DOUBLE_EQ(decisions[6].compared_to, 0.4);
  // Asynchronous: seed 0 was promoted from rung 0 before seeds 2 and 3 had even started.
  EXPECT_LT(decisions[0].decided_at, launches_of(2)[0].at);

  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(1).state, JobState::kSucceeded);
  EXPECT_EQ(job(2).state, JobState::kPruned);
  EXPECT_EQ(job(3).state, JobState::kPruned);
  EXPECT_EQ(summary->counts[JobState::kPruned], 2);
  EXPECT_EQ(attempts(2)[0].state, "pruned");
  EXPECT_EQ(job(2).error, "stopped early at rung 0 (val_loss 2, rank 3 of 3)");
  EXPECT_TRUE(
      observer_.saw("job job2 rung 0 (100 tokens, step 2): val_loss 2, rank 3 of 3 "
                    "(cutoff 0.5): stop"));
  // Only the pruned jobs were signalled, once each.
  EXPECT_TRUE(executor_.signals_to(launches_of(0)[0].pid).empty());
  ASSERT_EQ(executor_.signals_to(launches_of(2)[0].pid).size(), 1u);
  EXPECT_FALSE(executor_.signals_to(launches_of(2)[0].pid)[0].kill);
  // Every worker was told where the rungs are.
  const std::vector<int64_t> rungs = launches_of(0)[0].job.eval_at_tokens;
  ASSERT_GE(rungs.size(), 2u);
  EXPECT_EQ(rungs[0], 100);
  EXPECT_EQ(rungs[1], 200);

  // Pruned jobs stay on the leaderboard, with the rung they reached.
  auto board = *store_->leaderboard(sweep_id_, "val_loss", false);
  ASSERT_EQ(board.size(), 4u);
  EXPECT_EQ(board[0].job_id, job_id(1));
  EXPECT_EQ(board.back().job_id, job_id(2));
  EXPECT_EQ(board.back().state, "pruned");
  EXPECT_EQ(board.back().rung, 0);
}

TEST_F(RunLoopEarlyStopping, DecisionsMadeBeforeAnOrchestratorCrashStandAfterTheRestart) {
  add_jobs(3);
  const double rung0[] = {1.0, 0.5, 2.0};
  // Seed 2's worker trains long and ignores SIGTERM: it is still running when the orchestrator
  // dies, and only the restarted one's SIGKILL after the grace period ends it.
  script_ = [&](const JobFile& job) {
    if (seed_of(job) != 2) return rung_worker(rung0[seed_of(job)], 0.1);
    WorkerScript w = WorkerScript::training(100).ignore_term();
    w.emit(2, eval_at(2, 100, rung0[2]));
    return w;
  };
  RunConfig c = config();
  c.resources.slots = 3;
  c.early_stopping = asha_spec();
  {
    // The orchestrator dies right after the tick that judged rung 0 (kill -9: no cleanup). The
    // evals written at 2 s are read at the 3 s tick.
    RunLoop loop(*store_, executor_, c, &observer_, clock_);
    const double crash_at = clock_.now() + 4;
    clock_.set_on_wait([&](double now) {
      if (now >= crash_at) throw std::runtime_error("orchestrator killed");
    });
    EXPECT_THROW((void)loop.run(), std::runtime_error);
    clock_.set_on_wait(nullptr);
  }
  auto before = *store_->decisions(sweep_id_);
  ASSERT_EQ(before.size(), 3u);
  EXPECT_EQ(before[2].job_id, job_id(2));
  EXPECT_EQ(before[2].action, "stop");
  EXPECT_EQ(job(2).state, JobState::kRunning);  // its end was never recorded

  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->reattached, 3);
  EXPECT_EQ(job(0).state, JobState::kSucceeded);
  EXPECT_EQ(job(1).state, JobState::kSucceeded);
  EXPECT_EQ(job(2).state, JobState::kPruned);
  EXPECT_TRUE(observer_.saw("re-attached job job2"));
  auto after = *store_->decisions(sweep_id_);
  ASSERT_GE(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].job_id, before[i].job_id);
    EXPECT_EQ(after[i].rung, before[i].rung);
    EXPECT_EQ(after[i].action, before[i].action);
    EXPECT_EQ(after[i].decided_at, before[i].decided_at);
  }
  EXPECT_TRUE(executor_.launches().size() == 3u);  // nothing was started twice
}

TEST_F(RunLoopEarlyStopping, APendingJobWhoseStopWasDecidedEndsPrunedWithoutRunning) {
  add_jobs(2);
  // Job 0 was judged at rung 0 (a stop) and then lost with the orchestrator.
  RungDecision d = recorded_stop(job_id(0), /*rung_tokens=*/100, /*value=*/3);
  ASSERT_TRUE(store_->add_decision(d).ok());
  RunConfig c = config();
  c.early_stopping = asha_spec();
  ASSERT_TRUE(run(c).ok());
  EXPECT_EQ(job(0).state, JobState::kPruned);
  EXPECT_TRUE(launches_of(0).empty());
  EXPECT_EQ(job(1).state, JobState::kSucceeded);
  // A second decision on the same rung is ignored: the first stands.
  d.action = "continue";
  EXPECT_FALSE(*store_->add_decision(d));
  EXPECT_EQ(store_->decisions(sweep_id_)->at(0).action, "stop");
}

TEST_F(RunLoopEarlyStopping, DecisionsOfAnotherConfigurationStandButAreNotPeers) {
  add_jobs(2);
  // Job 0 was judged (and stopped) when the first rung sat at 50 tokens.
  RungDecision old = recorded_stop(job_id(0), /*rung_tokens=*/50, /*value=*/0.1);
  ASSERT_TRUE(store_->add_decision(old).ok());
  script_ = [&](const JobFile&) { return rung_worker(5.0, 4.0); };
  RunConfig c = config();
  c.early_stopping = asha_spec();  // rungs at 100, 200, ...
  ASSERT_TRUE(run(c).ok());
  EXPECT_TRUE(observer_.saw("1 early-stopping decision(s) were made under another"));
  EXPECT_EQ(job(0).state, JobState::kPruned);  // its stop stands
  // Job 1 is alone at the new rungs: 0.1 at the old one is not its peer.
  EXPECT_EQ(job(1).state, JobState::kSucceeded);
  auto all = *store_->decisions(sweep_id_);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].job_id, job_id(1));
  EXPECT_EQ(all[1].peers, 1);
  EXPECT_EQ(all[1].action, "continue");
}

TEST_F(RunLoopEarlyStopping, MaxJobsLeavesTheRestPending) {
  add_jobs(4);
  RunConfig c = config();
  c.budget.max_jobs = 3;
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->launched, 3);
  EXPECT_EQ(summary->counts[JobState::kSucceeded], 3);
  EXPECT_EQ(summary->counts[JobState::kPending], 1);
  EXPECT_TRUE(observer_.saw("budget reached (max_jobs 3)"));
}

TEST_F(RunLoopEarlyStopping, AComputeCapStopsNewJobsOnceReached) {
  add_jobs(4);
  RunConfig c = config();
  c.budget.max_steps = 5;  // the first two jobs train 3 steps each
  auto summary = run(c);
  ASSERT_TRUE(summary.ok()) << summary.error().to_string();
  EXPECT_EQ(summary->launched, 2);
  EXPECT_EQ(summary->counts[JobState::kPending], 2);
  EXPECT_EQ(store_->compute_used(sweep_id_)->steps, 6);
  EXPECT_TRUE(observer_.saw("budget reached (max_steps 5)"));
}

// The rules on their own, with values worked out by hand.
TEST(EarlyStoppingRules, AshaKeepsTheBestFractionOfTheValuesAtARung) {
  using M = Objective::Mode;
  // Arrivals at one rung, reduction factor 3: 1.0, 0.8, 1.2, 0.9, 0.7, 1.1.
  EXPECT_FALSE(asha_verdict(1.0, {}, 3, M::kMin).stop);              // alone: continues
  EXPECT_FALSE(asha_verdict(0.8, {1.0}, 3, M::kMin).stop);           // keep 1 of 2: the best
  EXPECT_TRUE(asha_verdict(1.2, {1.0, 0.8}, 3, M::kMin).stop);       // keep 1 of 3: 0.8
  EXPECT_TRUE(asha_verdict(0.9, {1.0, 0.8, 1.2}, 3, M::kMin).stop);  // keep 1 of 4: 0.8
  EXPECT_FALSE(asha_verdict(0.7, {1.0, 0.8, 1.2, 0.9}, 3, M::kMin).stop);
  Verdict v = asha_verdict(1.1, {1.0, 0.8, 1.2, 0.9, 0.7}, 3, M::kMin);  // keep 2 of 6
  EXPECT_TRUE(v.stop);
  EXPECT_EQ(v.rank, 5);
  EXPECT_EQ(v.peers, 6);
  EXPECT_DOUBLE_EQ(v.compared_to, 0.8);
  // Maximised metrics: the largest values are the best.
  EXPECT_FALSE(asha_verdict(0.6, {0.2, 0.4}, 3, M::kMax).stop);
  EXPECT_TRUE(asha_verdict(0.3, {0.2, 0.4}, 3, M::kMax).stop);
}

TEST(EarlyStoppingRules, MedianStopsBelowThePeersMedianRunningMean) {
  using M = Objective::Mode;
  // Peers' means over rungs 0..1: (1.0 + 0.9) / 2 = 0.95, (0.8 + 0.7) / 2 = 0.75; median 0.85.
  Verdict stop = median_verdict(0.9, {0.95, 0.75}, 2, M::kMin);
  EXPECT_TRUE(stop.stop);
  EXPECT_DOUBLE_EQ(stop.compared_to, 0.85);
  EXPECT_EQ(stop.rank, 2);
  EXPECT_FALSE(median_verdict(0.8, {0.95, 0.75}, 2, M::kMin).stop);
  // Too few peers: nobody is stopped.
  Verdict alone = median_verdict(5.0, {0.95}, 2, M::kMin);
  EXPECT_FALSE(alone.stop);
  EXPECT_TRUE(std::isnan(alone.compared_to));
  EXPECT_TRUE(median_verdict(0.2, {0.3, 0.5, 0.7}, 3, M::kMax).stop);  // median 0.5
}

TEST(EarlyStoppingRules, RungsArePlacedByTokensAndBoundedByTheJob) {
  EarlyStoppingSpec asha = asha_spec();
  asha.reduction_factor = 3;
  EXPECT_EQ(rung_tokens(asha, 2000), (std::vector<int64_t>{100, 300, 900}));
  EarlyStoppingSpec median;
  median.rule = EarlyStoppingSpec::Rule::kMedian;
  median.grace_tokens = 100;
  median.interval_tokens = 50;
  EXPECT_EQ(rung_tokens(median, 260), (std::vector<int64_t>{100, 150, 200, 250}));
  EXPECT_TRUE(rung_tokens(EarlyStoppingSpec{}, 1000).empty());
  EXPECT_EQ(rung_tokens(median, int64_t{1} << 60).size(), static_cast<size_t>(kMaxRungs));
}

}  // namespace
}  // namespace sweep::testing
