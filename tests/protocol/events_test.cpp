#include "protocol/events.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/failure.h"

namespace sweep {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(::getpid());
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Writes `event` through an EventWriter and reads it back through an EventTail.
template <typename T>
T through_file(const T& event, int attempt = 3) {
  std::string path = temp_path("roundtrip.jsonl");
  std::remove(path.c_str());
  {
    EventWriter w(path, attempt);
    w.emit(event);
  }
  EventTail tail(path);
  std::vector<Error> errors;
  auto events = tail.poll(&errors);
  std::remove(path.c_str());
  EXPECT_TRUE(errors.empty()) << errors.at(0).message;
  if (events.size() != 1u) {
    ADD_FAILURE() << "expected one event, read " << events.size();
    return T{};
  }
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[0].attempt, attempt);
  EXPECT_GT(events[0].time, 1.6e9);
  EXPECT_EQ(events[0].type(), T::kType);
  const T* typed = events[0].as<T>();
  if (!typed) {
    ADD_FAILURE() << "read back as " << events[0].type();
    return T{};
  }
  // The JSON form is stable: decoding and encoding again gives the same object.
  EXPECT_EQ(nlohmann::json(*typed), nlohmann::json(event));
  return *typed;
}

Event parse_ok(const std::string& line) {
  auto ev = parse_event(line);
  EXPECT_TRUE(ev.ok()) << line << ": " << ev.error().message;
  return ev.ok() ? *ev : Event{};
}

TEST(EventTypes, StartedRoundTrips) {
  StartedEvent e;
  e.pid = 4242;
  e.host = "node7";
  e.device = "cuda:0";
  e.threads = 8;
  e.versions = {{"sweep", "0.1.0"}, {"torch", "2.1.0"}};
  e.resumed_from_step = 40;
  e.cuda_visible_devices = "3";
  StartedEvent r = through_file(e);
  EXPECT_EQ(r.pid, 4242);
  EXPECT_EQ(r.host, "node7");
  EXPECT_EQ(r.device, "cuda:0");
  EXPECT_EQ(r.threads, 8);
  EXPECT_EQ(r.versions, e.versions);
  EXPECT_EQ(r.resumed_from_step, 40);
  EXPECT_EQ(r.cuda_visible_devices, "3");

  StartedEvent fresh = through_file(StartedEvent{});
  EXPECT_FALSE(fresh.resumed_from_step.has_value());
  EXPECT_FALSE(fresh.cuda_visible_devices.has_value());
}

TEST(EventTypes, ProgressRoundTripsWithNanAsNull) {
  ProgressEvent e{12,
                  {{"train_loss", 1.25},
                   {"lr", 2e-4},
                   {"grad_norm", 0.5},
                   {"epoch", 0.75},
                   {"samples_seen", 96},
                   {"tokens_per_s", 1234.5},
                   {"mem_mb", 512}}};
  ProgressEvent r = through_file(e);
  EXPECT_EQ(r.step, 12);
  EXPECT_EQ(r.metrics, e.metrics);

  ProgressEvent nan{13, {{"train_loss", std::nan("")}, {"lr", 1e-4}}};
  EXPECT_EQ(nlohmann::json(nan)["train_loss"], nullptr);
  ProgressEvent back = through_file(nan);
  ASSERT_EQ(back.metrics.count("train_loss"), 1u);
  EXPECT_TRUE(std::isnan(back.metrics.at("train_loss")));
  EXPECT_EQ(back.metrics.at("lr"), 1e-4);
}

TEST(EventTypes, EvalPredictionsRoundTripAndAreNotMetrics) {
  EvalEvent e;
  e.step = 20;
  e.metrics = {{"val_loss", 0.5}};
  e.predictions = {{0, "000007", "What shape?\n<image>", "A red circle.", "a red <b>circle"},
                   {3, "", "", "B", ""}};
  EvalEvent r = through_file(e);
  EXPECT_EQ(r.metrics, e.metrics);
  ASSERT_EQ(r.predictions.size(), 2u);
  EXPECT_EQ(r.predictions[0].sample_id, "000007");
  EXPECT_EQ(r.predictions[0].prompt, "What shape?\n<image>");
  EXPECT_EQ(r.predictions[0].reference, "A red circle.");
  EXPECT_EQ(r.predictions[0].prediction, "a red <b>circle");
  EXPECT_EQ(r.predictions[1].sample, 3);
  // An event without predictions (every older worker's) stays valid and writes none.
  const Event old = parse_ok(R"({"seq":1,"type":"eval","step":1,"val_loss":1.0})");
  EXPECT_TRUE(old.as<EvalEvent>()->predictions.empty());
  EvalEvent plain;
  EXPECT_FALSE(nlohmann::json(plain).contains("predictions"));
  EXPECT_FALSE(parse_event(R"({"seq":1,"type":"eval","step":1,"predictions":3})").ok());
}

TEST(EventTypes, EvalRoundTripsKeepingBookkeepingApartFromMetrics) {
  EvalEvent e{40,
              {{"val_loss", 0.71}, {"val_token_acc", 0.42}, {"val_exact_match", 0.39}},
              200,
              3.5,
              /*samples_seen=*/320,
              /*tokens_seen=*/29000,
              /*predictions=*/{}};
  EvalEvent r = through_file(e);
  EXPECT_EQ(r.step, 40);
  EXPECT_EQ(r.metrics, e.metrics);  // the tokens and samples seen are bookkeeping, not metrics
  EXPECT_EQ(r.val_samples, 200);
  EXPECT_EQ(r.samples_seen, 320);
  EXPECT_EQ(r.tokens_seen, 29000);
  EXPECT_EQ(r.seconds, 3.5);
  // On disk the fields are flat, as they always were.
  nlohmann::json j = e;
  EXPECT_EQ(j["val_loss"], 0.71);
  EXPECT_EQ(j["val_samples"], 200);
  EXPECT_EQ(j["seconds"], 3.5);
}

TEST(EventTypes, CheckpointRoundTripsWithDeletedPaths) {
  CheckpointEvent e{80,
                    "/runs/s/abc/checkpoints/step-000080",
                    {{"val_loss", 0.6}, {"train_loss", 0.8}},
                    {"/runs/s/abc/checkpoints/step-000040", "/runs/s/abc/checkpoints/step-000060"}};
  CheckpointEvent r = through_file(e);
  EXPECT_EQ(r.step, 80);
  EXPECT_EQ(r.path, e.path);
  EXPECT_EQ(r.metrics, e.metrics);
  EXPECT_EQ(r.deleted, e.deleted);
  CheckpointEvent none = through_file(CheckpointEvent{5, "/c/step-5", {}, {}});
  EXPECT_TRUE(none.metrics.empty());
  EXPECT_TRUE(none.deleted.empty());
}

TEST(EventTypes, FinishedRoundTrips) {
  FinishedEvent e;
  e.step = 150;
  e.final_metrics = {{"val_loss", 0.7}, {"train_loss", 0.65}};
  e.best = BestEvaluation{100, {{"val_loss", 0.68}, {"val_exact_match", 0.4}}};
  e.best_checkpoint = "/runs/s/abc/checkpoints/step-000100";
  FinishedEvent r = through_file(e);
  EXPECT_EQ(r.step, 150);
  EXPECT_EQ(r.final_metrics, e.final_metrics);
  ASSERT_TRUE(r.best.has_value());
  EXPECT_EQ(r.best->step, 100);
  EXPECT_EQ(r.best->metrics, e.best->metrics);
  EXPECT_EQ(r.best_checkpoint, e.best_checkpoint);

  FinishedEvent bare = through_file(FinishedEvent{});
  EXPECT_FALSE(bare.best.has_value());
  EXPECT_FALSE(bare.best_checkpoint.has_value());
}

TEST(EventTypes, StoppedFailedAndHeartbeatRoundTrip) {
  StoppedEvent stopped = through_file(StoppedEvent{33, std::string("/c/step-000033")});
  EXPECT_EQ(stopped.step, 33);
  EXPECT_EQ(stopped.checkpoint, "/c/step-000033");
  EXPECT_FALSE(through_file(StoppedEvent{0, std::nullopt}).checkpoint.has_value());

  FailedEvent failed = through_file(FailedEvent{"train", "loss is NaN at step 7", true});
  EXPECT_EQ(failed.stage, "train");
  EXPECT_EQ(failed.message, "loss is NaN at step 7");
  EXPECT_TRUE(failed.diverged);
  EXPECT_FALSE(through_file(FailedEvent{"load_data", "x.json: missing", false}).diverged);

  EXPECT_EQ(through_file(HeartbeatEvent{77}).step, 77);
}

// Lines as earlier versions of sweep-worker, tests/run/fake_worker.cpp and
// bench/orchestrator/noop_worker.cpp wrote them.
TEST(EventTypes, OldFormatLinesStillParse) {
  Event started = parse_ok(
      R"({"attempt":1,"device":"cpu","host":"box","pid":311,"resumed_from_step":null,"seq":1,)"
      R"("threads":2,"time":1700000000.5,"type":"started","versions":{"sweep":"0.1.0","torch":"2.1.0"}})");
  ASSERT_NE(started.as<StartedEvent>(), nullptr);
  EXPECT_EQ(started.seq, 1);
  EXPECT_EQ(started.attempt, 1);
  EXPECT_DOUBLE_EQ(started.time, 1700000000.5);
  EXPECT_EQ(started.as<StartedEvent>()->pid, 311);
  EXPECT_EQ(started.as<StartedEvent>()->versions.at("torch"), "2.1.0");
  EXPECT_FALSE(started.as<StartedEvent>()->resumed_from_step.has_value());

  // fake_worker wrote a number as its version, noop_worker only the pid.
  Event fake =
      parse_ok(R"({"seq":1,"type":"started","attempt":2,"pid":9,"versions":{"fake_worker":1},)"
               R"("resumed_from_step":4,"cuda_visible_devices":"3"})");
  EXPECT_EQ(fake.as<StartedEvent>()->versions.at("fake_worker"), "1");
  EXPECT_EQ(fake.as<StartedEvent>()->resumed_from_step, 4);
  EXPECT_NE(parse_ok(R"({"seq":1,"type":"started","pid":9})").as<StartedEvent>(), nullptr);

  Event progress = parse_ok(
      R"({"attempt":1,"data_wait_s":0.01,"epoch":0.5,"grad_norm":1.5,"lr":0.0001,"mem_mb":812.3,)"
      R"("samples_seen":8,"seq":2,"step":2,"time":1700000001.0,"tokens_per_s":950.0,)"
      R"("tokens_seen":800,"train_loss":2.25,"type":"progress"})");
  const auto* p = progress.as<ProgressEvent>();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->step, 2);
  EXPECT_EQ(p->metrics.size(), 9u);
  EXPECT_EQ(p->metrics.at("train_loss"), 2.25);
  EXPECT_EQ(p->metrics.at("tokens_seen"), 800);
  EXPECT_TRUE(std::isnan(parse_ok(R"({"seq":3,"type":"progress","step":3,"train_loss":null})")
                             .as<ProgressEvent>()
                             ->metrics.at("train_loss")));

  Event eval =
      parse_ok(R"({"attempt":1,"seconds":0.25,"seq":4,"step":0,"time":1700000002.0,"type":"eval",)"
               R"("val_exact_match":0.0,"val_loss":2.1,"val_samples":3,"val_token_acc":0.3})");
  const auto* e = eval.as<EvalEvent>();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->step, 0);
  EXPECT_EQ(e->metrics,
            (Metrics{{"val_exact_match", 0.0}, {"val_loss", 2.1}, {"val_token_acc", 0.3}}));
  EXPECT_EQ(e->val_samples, 3);
  EXPECT_EQ(e->seconds, 0.25);
  // The noop worker's eval: no bookkeeping at all.
  EXPECT_FALSE(
      parse_ok(R"({"seq":5,"type":"eval","step":1,"val_loss":1.0})").as<EvalEvent>()->val_samples);

  // The worker copied the eval (val_samples included) into the checkpoint's metrics.
  Event ckpt = parse_ok(
      R"({"attempt":1,"deleted":["/r/checkpoints/step-000004"],"metrics":{"train_loss":1.9,)"
      R"("val_exact_match":0.1,"val_loss":1.8,"val_samples":3,"val_token_acc":0.4},)"
      R"("path":"/r/checkpoints/step-000008","seq":6,"step":8,"time":1700000003.0,"type":"checkpoint"})");
  const auto* c = ckpt.as<CheckpointEvent>();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->path, "/r/checkpoints/step-000008");
  EXPECT_EQ(c->metrics.count("val_samples"), 0u);
  EXPECT_EQ(c->metrics.at("val_loss"), 1.8);
  EXPECT_EQ(c->deleted, std::vector<std::string>{"/r/checkpoints/step-000004"});
  // fake_worker's checkpoint had no `deleted`.
  EXPECT_TRUE(
      parse_ok(R"({"seq":7,"type":"checkpoint","step":2,"path":"/c","metrics":{"val_loss":1}})")
          .as<CheckpointEvent>()
          ->deleted.empty());

  Event finished = parse_ok(
      R"({"attempt":1,"best":{"step":8,"val_loss":1.8,"val_samples":3},)"
      R"("best_checkpoint":"/r/checkpoints/step-000008","final":{"train_loss":1.7,"val_loss":1.85,)"
      R"("val_samples":3},"seq":8,"step":12,"time":1700000004.0,"type":"finished"})");
  const auto* f = finished.as<FinishedEvent>();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->step, 12);
  ASSERT_TRUE(f->best.has_value());
  EXPECT_EQ(f->best->step, 8);
  EXPECT_EQ(f->best->metrics, (Metrics{{"val_loss", 1.8}}));
  EXPECT_EQ(f->final_metrics, (Metrics{{"train_loss", 1.7}, {"val_loss", 1.85}}));
  EXPECT_EQ(f->best_checkpoint, "/r/checkpoints/step-000008");
  // A run without evaluation: best and best_checkpoint were null.
  Event plain = parse_ok(
      R"({"seq":9,"type":"finished","step":3,"final":{},"best":null,"best_checkpoint":null})");
  EXPECT_FALSE(plain.as<FinishedEvent>()->best.has_value());
  EXPECT_NE(parse_ok(R"({"seq":9,"type":"finished","step":3})").as<FinishedEvent>(), nullptr);

  Event stopped = parse_ok(R"({"seq":10,"type":"stopped","step":5,"checkpoint":null})");
  EXPECT_FALSE(stopped.as<StoppedEvent>()->checkpoint.has_value());
  Event failed =
      parse_ok(R"({"seq":11,"type":"failed","stage":"train","message":"nan","diverged":true})");
  EXPECT_TRUE(failed.as<FailedEvent>()->diverged);
  EXPECT_EQ(parse_ok(R"({"seq":12,"type":"heartbeat","step":6})").as<HeartbeatEvent>()->step, 6);
  EXPECT_EQ(parse_ok(R"({"seq":13,"type":"heartbeat"})").as<HeartbeatEvent>()->step, 0);
  // A line without attempt (very old files): the reader's attempt applies.
  EXPECT_FALSE(parse_ok(R"({"seq":14,"type":"heartbeat"})").attempt.has_value());
}

TEST(EventTypes, UnknownTypesParseAsUnknownAndKeepTheirSeq) {
  Event e = parse_ok(R"({"seq":21,"type":"gpu_temperature","celsius":71})");
  EXPECT_EQ(e.seq, 21);
  ASSERT_NE(e.as<UnknownEvent>(), nullptr);
  EXPECT_EQ(e.type(), "gpu_temperature");
}

TEST(EventTypes, MalformedFieldsAreUserErrorsNamingTheField) {
  struct Case {
    const char* line;
    const char* message;
  };
  const Case cases[] = {
      {R"({"seq":1,"type":"progress","train_loss":1.0})",
       "seq 1: progress event: field 'step' is missing"},
      {R"({"seq":2,"type":"progress","step":"7"})",
       "seq 2: progress event: field 'step' must be an integer, not the string \"7\""},
      {R"({"seq":3,"type":"progress","step":1.5})",
       "field 'step' must be an integer, not the number 1.5"},
      {R"({"seq":4,"type":"progress","step":1,"train_loss":"low"})",
       "seq 4: progress event: field 'train_loss' must be a number (a metric) or null, not the "
       "string \"low\""},
      {R"({"seq":5,"type":"eval","step":1,"val_samples":"all"})",
       "eval event: field 'val_samples' must be an integer"},
      {R"({"seq":6,"type":"checkpoint","step":1})", "checkpoint event: field 'path' is missing"},
      {R"({"seq":7,"type":"checkpoint","step":1,"path":"/c","deleted":"/d"})",
       "checkpoint event: field 'deleted' must be a list of paths"},
      {R"({"seq":8,"type":"checkpoint","step":1,"path":"/c","metrics":{"val_loss":"x"}})",
       "checkpoint event: field 'metrics.val_loss' must be a number (a metric) or null"},
      {R"({"seq":9,"type":"finished","best":{"val_loss":1}})",
       "finished event: best: field 'step' is missing"},
      {R"({"seq":10,"type":"failed","diverged":"yes"})",
       "failed event: field 'diverged' must be true or false"},
      {R"({"type":"heartbeat"})", "event: field 'seq' is missing"},
      {R"({"seq":12})", "event: field 'type' is missing"},
      {R"([1, 2])", "not a JSON object"},
      {R"(not json)", "not a JSON object"},
  };
  for (const Case& c : cases) {
    auto ev = parse_event(c.line);
    ASSERT_FALSE(ev.ok()) << c.line;
    EXPECT_EQ(ev.error().kind, ErrorKind::kUser) << c.line;
    EXPECT_NE(ev.error().message.find(c.message), std::string::npos)
        << c.line << " -> " << ev.error().message;
  }
  // decode_event throws the Failure that parse_event turns into an error.
  EXPECT_THROW(decode_event(nlohmann::json::parse(R"({"seq":1,"type":"eval"})")), Failure);
}

TEST(EventWriter, SequenceContinuesAcrossWriters) {
  std::string path = temp_path("events.jsonl");
  std::remove(path.c_str());
  {
    EventWriter w(path, 1);
    w.emit(StartedEvent{});
    w.emit(ProgressEvent{1, {{"train_loss", 2.5}}});
  }
  EventWriter w2(path, 2);
  w2.emit(StartedEvent{});
  EXPECT_EQ(w2.last_seq(), 3);

  EventTail tail(path);
  auto events = tail.poll();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].seq, 1);
  ASSERT_NE(events[1].as<ProgressEvent>(), nullptr);
  EXPECT_DOUBLE_EQ(events[1].as<ProgressEvent>()->metrics.at("train_loss"), 2.5);
  EXPECT_EQ(events[2].attempt, 2);
  std::remove(path.c_str());
}

TEST(EventWriter, ContinuesAfterALineWhoseFieldsDoNotDecode) {
  std::string path = temp_path("odd.jsonl");
  write_file(path, R"({"seq":1,"type":"heartbeat"})"
                   "\n"
                   R"({"seq":2,"type":"progress","step":"x"})"
                   "\n");
  EventWriter w(path, 1);
  w.emit(HeartbeatEvent{1});
  EXPECT_EQ(w.last_seq(), 3);  // seq 2 is taken even though its line is malformed
  std::remove(path.c_str());
}

TEST(EventWriter, MetricClashingWithAFieldIsRefused) {
  std::string path = temp_path("clash.jsonl");
  std::remove(path.c_str());
  EventWriter w(path, 1);
  EXPECT_THROW(w.emit(ProgressEvent{1, {{"step", 2.0}}}), Failure);
  EvalEvent clash;
  clash.step = 1;
  clash.metrics = {{"seq", 2.0}};
  EXPECT_THROW(w.emit(clash), Failure);
  std::remove(path.c_str());
}

TEST(EventTail, LeavesPartialLineForNextPoll) {
  std::string path = temp_path("partial.jsonl");
  {
    std::ofstream out(path);
    out << R"({"seq":1,"type":"heartbeat"})"
        << "\n"
        << R"({"seq":2,"ty)";
  }
  EventTail tail(path);
  EXPECT_EQ(tail.poll().size(), 1u);
  {
    std::ofstream out(path, std::ios::app);
    out << R"(pe":"heartbeat"})"
        << "\n";
  }
  auto more = tail.poll();
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].seq, 2);
  std::remove(path.c_str());
}

TEST(EventTail, ReportsMalformedLinesWithTheirLineNumbers) {
  std::string path = temp_path("bad.jsonl");
  write_file(path, std::string("not json\n") + R"({"seq":1,"type":"heartbeat"})" + "\n\n" +
                       R"({"seq":2,"type":"eval","val_loss":1.0})" + "\n");
  EventTail tail(path);
  std::vector<Error> errors;
  EXPECT_EQ(tail.poll(&errors).size(), 1u);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, path + ":1: not a JSON object");
  EXPECT_EQ(errors[1].message, path + ":4: seq 2: eval event: field 'step' is missing");
  EXPECT_EQ(errors[1].kind, ErrorKind::kUser);

  // A later poll, and a tail that starts at a saved offset, still count lines from the start.
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"seq":3,"type":"progress","step":"x"})"
        << "\n";
  }
  errors.clear();
  EXPECT_EQ(tail.poll(&errors).size(), 0u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message.rfind(path + ":5: seq 3: progress event: field 'step'", 0), 0u)
      << errors[0].message;
  uint64_t offset = tail.offset();
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"seq":4,"type":"stopped","checkpoint":7})"
        << "\n";
  }
  EventTail resumed(path, offset);
  errors.clear();
  EXPECT_EQ(resumed.poll(&errors).size(), 0u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message.rfind(
                path + ":6: seq 4: stopped event: field 'checkpoint' must be a string", 0),
            0u)
      << errors[0].message;
  std::remove(path.c_str());
}

TEST(EventWriter, AKilledAttemptsPartialLineIsEndedSoTheNextAttemptsFirstEventIsKept) {
  std::string path = temp_path("killed.jsonl");
  // Attempt 1 was killed in the middle of its third line.
  write_file(path, std::string(R"({"seq":1,"type":"started","attempt":1})") + "\n" +
                       R"({"seq":2,"type":"progress","attempt":1,"step":1,"train_loss":2.0})" +
                       "\n" + R"({"seq":3,"type":"progress","att)");
  {
    EventWriter w(path, 2);
    w.emit(StartedEvent{});
    w.emit(ProgressEvent{2, {{"train_loss", 1.5}}});
  }
  EventTail tail(path);
  std::vector<Error> errors;
  auto events = tail.poll(&errors);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].type(), "started");
  EXPECT_EQ(events[2].attempt, 2);
  EXPECT_EQ(events[2].seq, 3);
  EXPECT_EQ(events[3].seq, 4);
  ASSERT_EQ(errors.size(), 1u);  // the fragment, on a line of its own
  EXPECT_EQ(errors[0].message, path + ":3: not a JSON object");
  EXPECT_EQ(tail.offset(), std::filesystem::file_size(path));
  std::remove(path.c_str());
}

TEST(EventTail, AFragmentGluedToAnEventIsDiscardedAndTheEventKept) {
  // A writer that did not start on a new line after a killed attempt: the fragment and the next
  // event share a line.
  std::string path = temp_path("glued.jsonl");
  const std::string fragment = R"({"attempt":1,"metrics":{"epoch":0.0,"samp)";
  write_file(path, std::string(R"({"seq":1,"type":"heartbeat","step":1})") + "\n" + fragment +
                       R"({"attempt":2,"seq":2,"type":"progress","step":2,"train_loss":1.0})" +
                       "\n" + R"({"seq":3,"type":"heartbeat","step":3})" + "\n");
  EventTail tail(path);
  std::vector<Error> errors;
  auto events = tail.poll(&errors);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].seq, 2);
  EXPECT_EQ(events[1].attempt, 2);
  ASSERT_NE(events[1].as<ProgressEvent>(), nullptr);
  EXPECT_EQ(events[1].as<ProgressEvent>()->step, 2);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, path + ":2: a partial line of " + std::to_string(fragment.size()) +
                                   " bytes (a worker killed mid-write) was discarded before the "
                                   "next event");
  // Garbage full of braces is one unreadable line, nothing more.
  write_file(path, std::string(200, '{') + "\n");
  EventTail garbage(path);
  errors.clear();
  EXPECT_TRUE(garbage.poll(&errors).empty());
  EXPECT_EQ(errors.size(), 1u);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace sweep
