// Fixtures of the store tests: a temp directory, a store that must open, job rows, and a
// store holding one sweep of four jobs.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "db/store.h"

namespace sweep::testing {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sweep_db_test_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::unique_ptr<Store> open_ok(const std::string& path) {
  auto store = Store::open(path);
  EXPECT_TRUE(store.ok()) << store.error().to_string();
  return store.ok() ? std::move(*store) : nullptr;
}

inline std::vector<NewJob> make_jobs(int n, int first = 0) {
  std::vector<NewJob> jobs;
  for (int i = first; i < first + n; ++i) {
    int r = 4 << (i % 3);
    jobs.push_back(NewJob{"hash" + std::to_string(i), i,
                          "{\"lora_r\":" + std::to_string(r) + ",\"lora_alpha\":" +
                              std::to_string(2 * r) + ",\"learning_rate\":0.0001,\"batch_size\":8}",
                          2.0});
  }
  return jobs;
}

inline int64_t count_rows(Store& store, const std::string& table) {
  auto result = store.query_readonly("SELECT COUNT(*) FROM " + table);
  EXPECT_TRUE(result.ok()) << result.error().to_string();
  return result.ok() ? std::stoll(*result->rows.at(0).at(0)) : -1;
}

inline int64_t add_sweep(Store& store, const std::string& name = "r_alpha",
                         const std::string& mode = "min") {
  auto id = store.upsert_sweep(name, "sweeps/" + name + ".yaml", "{}", "val_loss", mode);
  EXPECT_TRUE(id.ok()) << id.error().to_string();
  return id.ok() ? *id : 0;
}

class StoreWithJobs : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_ok(":memory:");
    sweep_ = add_sweep(*store_);
    ASSERT_TRUE(store_->upsert_jobs(sweep_, make_jobs(4)).ok());
    auto jobs = store_->list_jobs(sweep_);
    ASSERT_TRUE(jobs.ok());
    for (const auto& job : *jobs) ids_.push_back(job.id);
  }
  std::unique_ptr<Store> store_;
  int64_t sweep_ = 0;
  std::vector<int64_t> ids_;
};

}  // namespace sweep::testing
