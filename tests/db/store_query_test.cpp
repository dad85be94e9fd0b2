// `Store::query_readonly`, the door `sweep query` uses: every write refused whatever the
// connection, the file left as it was, and rows with their numeric columns marked.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "db/store.h"
#include "tests/db/store_test_util.h"

namespace sweep {
namespace {

namespace fs = std::filesystem;
using namespace sweep::testing;

struct Refusal {
  const char* sql;
  const char* reason;
};
const Refusal kRefusals[] = {
    {"DELETE FROM jobs", "DELETE from jobs is not allowed"},
    {"delete from jobs where id > 0", "DELETE from jobs is not allowed"},
    {"UPDATE jobs SET state = 'failed'", "UPDATE of jobs is not allowed"},
    {"INSERT INTO sweeps (name, created_at, updated_at) VALUES ('x', 0, 0)",
     "INSERT into sweeps is not allowed"},
    {"ATTACH DATABASE '/tmp/sweep_db_test_other.db' AS other", "ATTACH is not allowed"},
    {"PRAGMA journal_mode=DELETE", "PRAGMA journal_mode=DELETE is not allowed"},
    {"PRAGMA user_version = 5", "PRAGMA user_version=5 is not allowed"},
    {"CREATE TABLE t (x)", "CREATE TABLE t is not allowed"},
    {"DROP VIEW leaderboard", "DROP VIEW leaderboard is not allowed"},
    {"VACUUM", "the statement would change the database"},
    {"CREATE INDEX i ON jobs (hash)", "CREATE INDEX i is not allowed"},
    {"ALTER TABLE jobs ADD COLUMN x", "ALTER TABLE jobs is not allowed"},
    {"SELECT load_extension('x')", "function load_extension is not allowed"},
    {"SELECT * FROM pragma_journal_mode('delete')",
     "table-valued function pragma_journal_mode (only read-only pragmas are allowed)"},
    {"BEGIN", "transaction control"},
    {"SELECT 1; DELETE FROM jobs", "it runs exactly one statement"},
    {"SELECT 1; SELECT 2", "it runs exactly one statement"},
};

void expect_refusals(Store& store) {
  for (const Refusal& r : kRefusals) {
    auto result = store.query_readonly(r.sql);
    ASSERT_FALSE(result.ok()) << r.sql;
    EXPECT_EQ(result.error().kind, ErrorKind::kUser) << r.sql;
    EXPECT_EQ(result.error().message.rfind("sweep query is read-only: ", 0), 0u)
        << r.sql << " -> " << result.error().message;
    EXPECT_NE(result.error().message.find(r.reason), std::string::npos)
        << r.sql << " -> " << result.error().message;
  }
}

TEST_F(StoreWithJobs, QueryRefusesEveryWriteOnAWritableConnection) {
  expect_refusals(*store_);
  EXPECT_EQ(count_rows(*store_, "jobs"), 4);
  EXPECT_EQ(count_rows(*store_, "sweeps"), 1);
  auto views =
      store_->query_readonly("SELECT COUNT(*) FROM sqlite_master WHERE name = 'leaderboard'");
  ASSERT_TRUE(views.ok());
  EXPECT_EQ(*views->rows[0][0], "1");
  EXPECT_FALSE(fs::exists("/tmp/sweep_db_test_other.db"));
  // The guard is gone after a refusal: the store still writes.
  EXPECT_TRUE(store_->set_state(ids_[0], JobState::kCancelled).ok());
}

TEST(StoreQuery, ReadOnlyStoreRefusesWritesAndLeavesTheFileUnchanged) {
  TempDir dir;
  std::string path = dir.file("sweep.db");
  {
    auto store = open_ok(path);
    ASSERT_TRUE(store->upsert_jobs(add_sweep(*store), make_jobs(5)).ok());
  }
  auto readonly = Store::open_readonly(path);
  ASSERT_TRUE(readonly.ok()) << readonly.error().to_string();
  expect_refusals(**readonly);
  readonly->reset();
  auto store = open_ok(path);
  EXPECT_EQ(count_rows(*store, "jobs"), 5);
  auto mode = store->query_readonly("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  EXPECT_EQ(*mode->rows[0][0], "wal");
}

TEST_F(StoreWithJobs, QueryReturnsRowsWithNumericColumnsMarked) {
  auto result = store_->query_readonly(
      "SELECT id, hash, json_extract(params, '$.lora_r') AS r, NULL AS empty "
      "FROM jobs ORDER BY id LIMIT 2 -- a trailing comment");
  ASSERT_TRUE(result.ok()) << result.error().to_string();
  EXPECT_EQ(result->columns, (std::vector<std::string>{"id", "hash", "r", "empty"}));
  ASSERT_EQ(result->rows.size(), 2u);
  EXPECT_EQ(*result->rows[1][1], "hash1");
  EXPECT_EQ(*result->rows[1][2], "8");
  EXPECT_FALSE(result->rows[1][3].has_value());
  EXPECT_EQ(result->numeric_column, (std::vector<bool>{true, false, true, false}));
  for (const char* sql :
       {"SELECT * FROM pragma_table_info('jobs')", "SELECT name FROM pragma_index_list('jobs')",
        "SELECT * FROM pragma_index_info('jobs_by_sweep_state')", "SELECT * FROM pragma_table_list",
        "SELECT * FROM pragma_foreign_key_list('jobs')",
        "SELECT p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.name = 'jobs'"}) {
    auto pragma = store_->query_readonly(sql);
    EXPECT_TRUE(pragma.ok()) << sql << ": " << pragma.error().to_string();
  }
  auto columns = store_->query_readonly("SELECT name FROM pragma_table_info('jobs') LIMIT 1");
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ(*columns->rows[0][0], "id");
  auto info = store_->query_readonly("PRAGMA table_info(jobs)");
  EXPECT_TRUE(info.ok()) << info.error().to_string();
  for (const char* sql : {"WITH x AS (SELECT 1 AS a) SELECT a FROM x;", "VALUES (1), (2)",
                          "EXPLAIN QUERY PLAN SELECT * FROM leaderboard", "PRAGMA user_version",
                          "PRAGMA index_list(jobs)", "SELECT * FROM evals"}) {
    auto allowed = store_->query_readonly(sql);
    EXPECT_TRUE(allowed.ok()) << sql << ": " << allowed.error().to_string();
  }
}

TEST_F(StoreWithJobs, QueryStopsAtItsTimeLimitAndTheStoreStillWorks) {
  auto endless = store_->query_readonly(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
      0.1);
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.error().kind, ErrorKind::kUser);
  EXPECT_EQ(endless.error().message,
            "sweep query: stopped after the time limit of 0.1 s (--timeout)");
  EXPECT_NE(endless.error().hint.find("--timeout SECONDS"), std::string::npos);
  // The handler is gone: a later query and the store's own statements run.
  auto later = store_->query_readonly("SELECT COUNT(*) FROM jobs", 5);
  ASSERT_TRUE(later.ok()) << later.error().to_string();
  EXPECT_EQ(*later->rows[0][0], "4");
  EXPECT_TRUE(store_->set_state(ids_[0], JobState::kCancelled).ok());
}

TEST_F(StoreWithJobs, QuerySyntaxErrorIsAUserErrorWithSqlitesMessage) {
  auto result = store_->query_readonly("SELEC * FROM jobs");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::kUser);
  EXPECT_EQ(result.error().message, "sweep query: near \"SELEC\": syntax error");
  auto empty = store_->query_readonly("  ; ");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "sweep query: the SQL text is empty");
}

}  // namespace
}  // namespace sweep
