#include "orchestrator/run/ingestor.h"

#include <cmath>
#include <vector>

namespace sweep {

namespace {

const char* const kEnvelope[] = {"seq", "time", "attempt", "type", "step"};

bool is_envelope(const std::string& key) {
  for (const char* k : kEnvelope) {
    if (key == k) return true;
  }
  return false;
}

int64_t step_of(const nlohmann::json& body) {
  auto it = body.find("step");
  return it != body.end() && it->is_number() ? it->get<int64_t>() : 0;
}

std::optional<double> number_of(const nlohmann::json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

std::map<std::string, double> numeric_fields(const nlohmann::json& body) {
  std::map<std::string, double> out;
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (is_envelope(it.key()) || !it->is_number()) continue;
    double v = it->get<double>();
    if (std::isfinite(v)) out[it.key()] = v;
  }
  return out;
}

Ingestor::Ingestor(Store& store, int64_t job_id, int attempt, const std::string& events_path,
                   uint64_t offset, int64_t last_seq)
    : store_(store), job_id_(job_id), attempt_(attempt), tail_(events_path, offset),
      last_seq_(last_seq) {}

Result<int> Ingestor::poll() {
  std::vector<Event> events = tail_.poll();
  if (events.empty()) return 0;
  JobProgress before = progress_;
  int64_t seq_before = last_seq_;
  int count = 0;
  Status st = store_.transaction([&]() -> Status {
    for (const Event& e : events) {
      if (e.seq <= last_seq_) continue;  // already stored by an earlier read of this file
      SWEEP_RETURN_IF_ERROR(apply(e));
      last_seq_ = e.seq;
      ++count;
    }
    return store_.set_cursor(job_id_, tail_.offset(), last_seq_);
  });
  if (!st.ok()) {
    progress_ = before;
    last_seq_ = seq_before;
    return st.error();
  }
  return count;
}

Status Ingestor::apply(const Event& e) {
  const nlohmann::json& b = e.body;
  int attempt = b.value("attempt", attempt_);
  int64_t step = step_of(b);
  progress_.last_event_time = e.time;
  bool current = attempt == attempt_;
  if (e.type == "progress") {
    if (current) {
      progress_.step = step;
      progress_.train_loss = number_of(b, "train_loss");
      progress_.tokens_per_s = number_of(b, "tokens_per_s");
      if (b.contains("train_loss") && !progress_.train_loss) progress_.nonfinite_loss = true;
    }
    return store_.add_metrics(job_id_, attempt, step, numeric_fields(b));
  }
  if (e.type == "eval") return store_.add_eval(job_id_, attempt, step, numeric_fields(b));
  if (e.type == "checkpoint") {
    nlohmann::json metrics = b.value("metrics", nlohmann::json::object());
    return store_.add_checkpoint(job_id_, step, b.value("path", ""), metrics.dump());
  }
  if (e.type == "heartbeat") {
    if (current) progress_.step = std::max(progress_.step, step);
    return ok_status();
  }
  if (e.type == "started" || e.type == "finished" || e.type == "failed" || e.type == "stopped") {
    if (current && e.type != "started") progress_.final_event = e;
    if (current && e.type == "started") progress_.final_event.reset();
    return store_.set_job_info(job_id_, e.type, b.dump());
  }
  return ok_status();  // unknown types are ignored: newer workers may add some
}

}  // namespace sweep
