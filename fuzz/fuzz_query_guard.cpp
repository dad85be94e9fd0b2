// The read-only guard of `sweep query` (db/query_guard.h, Store::query_readonly) on a read-write
// in-memory results database, so the guard alone stands between the SQL and the data: whatever
// the input, the schema, the rows and the connection's settings are the same afterwards.
#include <sqlite3.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "db/store.h"

namespace {

std::string fingerprint(sweep::Store& store) {
  std::string out;
  for (const char* sql : {"SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name",
                          "SELECT type, name, sql FROM sqlite_temp_schema ORDER BY name",
                          "SELECT * FROM sweeps ORDER BY id", "SELECT * FROM jobs ORDER BY id"}) {
    auto result = store.query_readonly(sql);
    if (!result.ok()) std::abort();
    for (const auto& row : result->rows) {
      for (const auto& cell : row) out += (cell ? *cell : std::string("NULL")) + "|";
      out += "\n";
    }
  }
  return out + std::to_string(store.schema_version());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<sweep::Store> store;
  static std::string before;
  if (!store) {
    auto opened = sweep::Store::open(":memory:");
    if (!opened.ok()) std::abort();
    store = std::move(*opened);
    auto sweep_id = store->upsert_sweep("fuzz", "/fuzz/sweep.yaml", "{}", "val_loss", "min");
    if (!sweep_id.ok()) std::abort();
    sweep::NewJob job;
    job.hash = "0123456789ab";
    job.params_json = R"({"lora_r": 8})";
    if (!store->upsert_jobs(*sweep_id, {job}).ok()) std::abort();
    before = fingerprint(*store);
  }
  const std::string sql(reinterpret_cast<const char*>(data), size);
  (void)store->query_readonly(sql, /*timeout_seconds=*/0.5);
  if (fingerprint(*store) != before) std::abort();  // the guard let a change through
  return 0;
}
