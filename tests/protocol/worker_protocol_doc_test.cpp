// docs/worker-protocol.md against the real protocol: a job.json written by JobFile::to_json and
// one event of each type written by protocol/events.h, every field set. Each field they write is
// in the doc's tables, and each field the tables list is written: the doc cannot drift.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include "protocol/events.h"
#include "protocol/job_file.h"

namespace sweep {
namespace {

using nlohmann::json;
using Names = std::set<std::string>;

std::string read_doc() {
  std::ifstream in(std::string(SWEEP_SOURCE_DIR) + "/docs/worker-protocol.md");
  EXPECT_TRUE(in) << "docs/worker-protocol.md not found";
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The rows of the table that follows `header_line` (its first line), as cells.
std::vector<std::vector<std::string>> table_after(const std::string& doc,
                                                  const std::string& header_line) {
  std::vector<std::vector<std::string>> rows;
  size_t at = doc.find("\n" + header_line + "\n");
  EXPECT_NE(at, std::string::npos) << "no table headed " << header_line;
  if (at == std::string::npos) return rows;
  std::istringstream in(doc.substr(at + 1));
  std::string line;
  std::getline(in, line);  // header
  std::getline(in, line);  // |---|
  while (std::getline(in, line) && line.rfind('|', 0) == 0) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream row(line.substr(1));
    while (std::getline(row, cell, '|')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// The field names in a cell: each `name`, `name{...}`, `name[]` or `name: value` in backticks;
// other code spans (`lora_targets.json`, `{sample, ...}`) are not field names.
Names field_names(const std::string& cell) {
  static const std::regex kField("`([a-z_]+)([{\\[:][^`]*)?`");
  Names out;
  for (std::sregex_iterator it(cell.begin(), cell.end(), kField), end; it != end; ++it)
    out.insert((*it)[1]);
  return out;
}

// Top-level keys; the keys of a nested object as "parent.key" (but `params`, an open map).
Names keys_of(const json& j) {
  Names out;
  for (const auto& [key, value] : j.items()) {
    if (value.is_object() && key != "params") {
      for (const auto& [sub, unused] : value.items()) out.insert(key + "." + sub);
    } else {
      out.insert(key);
    }
  }
  return out;
}

JobFile full_job_file() {
  JobFile f;
  f.sweep = "s";
  f.job_id = "0123456789abcdef";
  f.run_dir = "/runs/s/0123456789abcdef";
  f.base_model = "/models/m";
  f.train_data = "/data/train.json";
  f.val_data = "/data/val.json";
  f.image_folder = "/data/images";
  f.max_image_pixels = 1000000;
  f.params = {{"lora_r", 8}};
  f.feature_cache = "/runs/s/feature-cache";
  f.eval_at_tokens = {1000, 2000};
  return f;
}

TEST(WorkerProtocolDoc, JobJsonTableListsExactlyTheFieldsJobFileWrites) {
  const std::string doc = read_doc();
  Names documented;
  for (const auto& row : table_after(doc, "| field | type | meaning |"))
    documented.insert(
        row.at(0).substr(row.at(0).find('`') + 1, row.at(0).rfind('`') - row.at(0).find('`') - 1));
  EXPECT_EQ(documented, keys_of(full_job_file().to_json()));
}

Metrics metrics(std::initializer_list<const char*> names) {
  Metrics m;
  for (const char* n : names) m[n] = 1.0;
  return m;
}

// One event of each type with every field set; the metric names are the ones the doc gives.
std::vector<EventPayload> full_events() {
  StartedEvent started{1, "h", "cpu", 2, {{"sweep", "0.1"}}, 0, "0"};
  ProgressEvent progress{3, metrics({"train_loss", "lr", "grad_norm", "tokens_per_s", "mem_mb",
                                     "epoch", "samples_seen", "tokens_seen", "data_wait_s"})};
  EvalEvent eval{3,
                 metrics({"val_loss", "val_token_acc", "val_exact_match"}),
                 4,
                 1.5,
                 6,
                 7,
                 {EvalPrediction{0, "id", "p", "r", "q"}}};
  CheckpointEvent checkpoint{3, "/c", metrics({"val_loss"}), {"/old"}};
  FinishedEvent finished{3, metrics({"val_loss"}), BestEvaluation{2, metrics({"val_loss"})}, "/c"};
  StoppedEvent stopped{3, "/c"};
  FailedEvent failed;
  failed.stage = "train";
  failed.message = "m";
  failed.diverged = failed.out_of_memory = failed.not_learning = true;
  failed.disk_full = failed.bad_input = true;
  HeartbeatEvent heartbeat{3};
  LoraTargetsEvent lora{{{"language_model", 4}}, 1, "/r/lora_targets.json"};
  LearningCheckEvent check{3, false, 0.1, 0.2, 0.3, 0.4, "r"};
  return {started, progress, eval, checkpoint, finished, stopped, failed, heartbeat, lora, check};
}

const Names kEnvelope = {"seq", "time", "type", "attempt"};

TEST(WorkerProtocolDoc, EnvelopeTableListsExactlyTheEnvelope) {
  Names documented;
  for (const auto& row : table_after(read_doc(), "| field | meaning |"))
    for (const std::string& name : field_names(row.at(0))) documented.insert(name);
  EXPECT_EQ(documented, kEnvelope);
  Event e{7, 1700000000.25, 1, HeartbeatEvent{3}};
  json j;
  to_json(j, e);
  Names written = keys_of(j);
  written.erase("step");  // the heartbeat's own field
  EXPECT_EQ(written, kEnvelope);
}

TEST(WorkerProtocolDoc, EventTableListsExactlyTheFieldsEachEventWrites) {
  std::map<std::string, Names> documented;
  for (const auto& row : table_after(read_doc(), "| type | fields | stored as |")) {
    const Names type = field_names(row.at(0));
    ASSERT_EQ(type.size(), 1u) << row.at(0);
    documented[*type.begin()] = field_names(row.at(1));
  }
  Names types;
  for (const EventPayload& payload : full_events()) {
    Event e{1, 1.0, 1, payload};
    json j;
    to_json(j, e);
    Names written;
    for (const auto& [key, unused] : j.items()) {
      if (!kEnvelope.count(key)) written.insert(key);
    }
    types.insert(e.type());
    EXPECT_EQ(documented[e.type()], written) << "event type " << e.type();
  }
  Names documented_types;
  for (const auto& [type, unused] : documented) documented_types.insert(type);
  EXPECT_EQ(documented_types, types);
}

}  // namespace
}  // namespace sweep
