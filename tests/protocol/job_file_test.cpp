// job.json (protocol/job_file.h): the round trip through disk, the keys written only when set,
// and every key's presence, type and range checked before it is used.
#include "protocol/job_file.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "common/failure.h"

namespace sweep {
namespace {

TEST(JobFile, RoundTripsThroughDisk) {
  JobFile f;
  f.sweep = "s";
  f.job_id = "abc";
  f.run_dir = "/tmp/run";
  f.base_model = "/m";
  f.train_data = "/t.json";
  f.params = {{"lora_r", 4}};
  const std::string path = ::testing::TempDir() + "/job.json." + std::to_string(::getpid());
  f.write(path);
  JobFile g = JobFile::read(path);
  EXPECT_EQ(g.job_id, "abc");
  EXPECT_EQ(g.params["lora_r"].get<int>(), 4);
  EXPECT_EQ(g.events_path(), "/tmp/run/events.jsonl");
  std::remove(path.c_str());
}

// The keys a job file cannot do without, every other left at its default.
JobFile minimal_job_file() {
  JobFile f;
  f.job_id = "abc";
  f.run_dir = "/tmp/run";
  f.base_model = "/m";
  f.train_data = "/t.json";
  return f;
}

TEST(JobFile, FeatureCacheIsWrittenOnlyWhenSet) {
  JobFile f = minimal_job_file();
  EXPECT_FALSE(f.to_json().contains("feature_cache"));
  EXPECT_EQ(JobFile::from_json(f.to_json()).feature_cache, "");
  f.feature_cache = "/runs/s/feature-cache";
  EXPECT_EQ(JobFile::from_json(f.to_json()).feature_cache, "/runs/s/feature-cache");
}

TEST(JobFile, MissingKeyIsNamed) {
  try {
    JobFile::from_json({{"run_dir", "/x"}});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("job_id"), std::string::npos);
  }
}

// Reads `j` and returns the error message ("" when it is accepted).
std::string job_file_error(const nlohmann::json& j) {
  try {
    JobFile::from_json(j);
    return "";
  } catch (const Failure& e) {
    return e.what();
  }
}

nlohmann::json minimal_job_json() {
  return {{"job_id", "abc"},
          {"run_dir", "/x"},
          {"base_model", "/m"},
          {"data", {{"train", "/t.json"}}},
          {"params", nlohmann::json::object()}};
}

TEST(JobFile, ThreadsMustBeAPositiveInt) {
  const std::string must = "key 'threads' must be an integer in [1, 2147483647], not ";
  for (const char* bad : {"0", "-1", "4294967297", "1000000000000", "2.5", "\"4\""}) {
    nlohmann::json j = minimal_job_json();
    j["threads"] = nlohmann::json::parse(bad);
    EXPECT_EQ(job_file_error(j), must + bad) << bad;
  }
}

TEST(JobFile, ThreadsBeyondThisMachinesHardwareThreadsAreRefusedForRunning) {
  const std::string hw = std::to_string(max_job_threads());
  EXPECT_GE(max_job_threads(), 1);
  JobFile job = JobFile::from_json(minimal_job_json());
  for (int bad : {max_job_threads() + 1, 1000000000}) {
    job.threads = bad;
    try {
      check_threads_for_this_machine(job);
      FAIL() << bad;
    } catch (const Failure& e) {
      EXPECT_EQ(e.error().message, "key 'threads' must be an integer in [1, " + hw +
                                       "] (1 to this machine's " + hw + " hardware threads), not " +
                                       std::to_string(bad));
      EXPECT_EQ(e.error().hint, "lower resources.threads_per_job in the sweep file");
    }
  }
  job.threads = max_job_threads();
  EXPECT_NO_THROW(check_threads_for_this_machine(job));
}

TEST(JobFile, AttemptAndSchemaAreRangeCheckedBeforeNarrowing) {
  nlohmann::json j = minimal_job_json();
  j["attempt"] = 4294967297LL;
  EXPECT_EQ(job_file_error(j),
            "key 'attempt' must be an integer in [1, 2147483647], not 4294967297");
  j = minimal_job_json();
  j["schema"] = 4294967297LL;
  EXPECT_EQ(job_file_error(j),
            "key 'schema' must be an integer in [0, 2147483647], not 4294967297");
}

TEST(JobFile, MaxImagePixelsIsWrittenOnlyWhenSetAndRangeChecked) {
  JobFile f = minimal_job_file();
  EXPECT_FALSE(f.to_json()["data"].contains("max_image_pixels"));
  EXPECT_EQ(JobFile::from_json(f.to_json()).max_image_pixels, 0);
  f.max_image_pixels = 4096;
  EXPECT_EQ(f.to_json()["data"]["max_image_pixels"], 4096);
  EXPECT_EQ(JobFile::from_json(f.to_json()).max_image_pixels, 4096);
  nlohmann::json j = f.to_json();
  j["data"]["max_image_pixels"] = -1;
  EXPECT_EQ(job_file_error(j),
            "key 'max_image_pixels' must be an integer in [0, 2147483647], not -1");
}

TEST(JobFile, ParamsAreRequired) {
  nlohmann::json j = minimal_job_json();
  j.erase("params");
  EXPECT_EQ(job_file_error(j), "missing key 'params'");
  j["params"] = nlohmann::json::array();
  EXPECT_EQ(job_file_error(j), "key 'params' must be an object of training parameters, not []");
}

}  // namespace
}  // namespace sweep
