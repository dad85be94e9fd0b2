#include "protocol/events.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "protocol/job_file.h"

namespace sweep {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(::getpid());
}

TEST(EventWriter, SequenceContinuesAcrossWriters) {
  std::string path = temp_path("events.jsonl");
  std::remove(path.c_str());
  {
    EventWriter w(path, 1);
    w.emit("started", {{"pid", 1}});
    w.emit("progress", {{"step", 1}, {"train_loss", 2.5}});
  }
  EventWriter w2(path, 2);
  w2.emit("started", {{"pid", 2}});
  EXPECT_EQ(w2.last_seq(), 3);

  EventTail tail(path);
  auto events = tail.poll();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[1].type, "progress");
  EXPECT_DOUBLE_EQ(events[1].body["train_loss"].get<double>(), 2.5);
  EXPECT_EQ(events[2].body["attempt"].get<int>(), 2);
  std::remove(path.c_str());
}

TEST(EventTail, LeavesPartialLineForNextPoll) {
  std::string path = temp_path("partial.jsonl");
  {
    std::ofstream out(path);
    out << R"({"seq":1,"type":"heartbeat"})" << "\n" << R"({"seq":2,"ty)";
  }
  EventTail tail(path);
  EXPECT_EQ(tail.poll().size(), 1u);
  {
    std::ofstream out(path, std::ios::app);
    out << R"(pe":"heartbeat"})" << "\n";
  }
  auto more = tail.poll();
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].seq, 2);
  std::remove(path.c_str());
}

TEST(EventTail, ReportsMalformedLines) {
  std::string path = temp_path("bad.jsonl");
  {
    std::ofstream out(path);
    out << "not json\n" << R"({"seq":1,"type":"heartbeat"})" << "\n";
  }
  EventTail tail(path);
  std::vector<std::string> errors;
  EXPECT_EQ(tail.poll(&errors).size(), 1u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("not a JSON object"), std::string::npos);
  std::remove(path.c_str());
}

TEST(JobFile, RoundTripsThroughDisk) {
  JobFile f;
  f.sweep = "s";
  f.job_id = "abc";
  f.run_dir = "/tmp/run";
  f.base_model = "/m";
  f.train_data = "/t.json";
  f.params = {{"lora_r", 4}};
  std::string path = temp_path("job.json");
  f.write(path);
  JobFile g = JobFile::read(path);
  EXPECT_EQ(g.job_id, "abc");
  EXPECT_EQ(g.params["lora_r"].get<int>(), 4);
  EXPECT_EQ(g.events_path(), "/tmp/run/events.jsonl");
  std::remove(path.c_str());
}

TEST(JobFile, MissingKeyIsNamed) {
  try {
    JobFile::from_json({{"run_dir", "/x"}});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("job_id"), std::string::npos);
  }
}

}  // namespace
}  // namespace sweep
