#include "orchestrator/run/ingestor.h"

#include <cmath>
#include <type_traits>
#include <vector>

#include <spdlog/spdlog.h>

namespace sweep {

namespace {

// The finite metrics: a NaN (null in the file) is not stored.
Metrics finite(const Metrics& metrics) {
  Metrics out;
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value)) out.emplace(name, value);
  }
  return out;
}

std::optional<double> finite_metric(const Metrics& metrics, const char* name) {
  auto it = metrics.find(name);
  if (it == metrics.end() || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

Ingestor::Ingestor(Store& store, int64_t job_id, int attempt, const std::string& events_path,
                   uint64_t offset, int64_t last_seq)
    : store_(store),
      job_id_(job_id),
      attempt_(attempt),
      tail_(events_path, offset),
      last_seq_(last_seq) {}

Result<int> Ingestor::poll() {
  std::vector<Error> malformed;
  std::vector<Event> events = tail_.poll(&malformed);
  warn_malformed(malformed);
  if (events.empty() && malformed.empty()) return 0;
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
    if (!malformed.empty()) SWEEP_RETURN_IF_ERROR(record_malformed(malformed));
    return store_.set_cursor(job_id_, tail_.offset(), last_seq_);
  });
  if (!st.ok()) {
    progress_ = before;
    last_seq_ = seq_before;
    return st.error();
  }
  return count;
}

void Ingestor::warn_malformed(const std::vector<Error>& malformed) {
  constexpr size_t kMaxWarnings = 5;  // per poll: a file of garbage must not flood the log
  for (size_t i = 0; i < malformed.size(); ++i) {
    ++progress_.malformed_count;
    if (i < kMaxWarnings) {
      spdlog::warn("{} (skipped; {} unreadable line(s) in this events file so far)",
                   malformed[i].message, progress_.malformed_count);
    }
  }
  if (malformed.size() > kMaxWarnings) {
    spdlog::warn("{} more unreadable line(s) skipped, the last: {}",
                 malformed.size() - kMaxWarnings, malformed.back().message);
  }
  if (!malformed.empty()) progress_.last_malformed = malformed.back();
}

Status Ingestor::record_malformed(const std::vector<Error>& malformed) {
  // The job's info keeps the count across runs of the orchestrator (lines before the cursor are
  // never read again), for `sweep jobs --format json` and `sweep query`.
  auto job = store_.get_job(job_id_);
  if (!job.ok()) return job.error();
  auto info = nlohmann::json::parse(job->info_json, nullptr, /*allow_exceptions=*/false);
  int64_t before = 0;
  if (info.is_object() && info.contains(kUnreadableKey) && info[kUnreadableKey].is_object())
    before = info[kUnreadableKey].value("count", int64_t{0});
  nlohmann::json value{{"count", before + static_cast<int64_t>(malformed.size())},
                       {"last", malformed.back().message}};
  return store_.set_job_info(job_id_, kUnreadableKey, value.dump());
}

Status Ingestor::apply(const Event& e) {
  const int attempt = e.attempt.value_or(attempt_);
  const bool current = attempt == attempt_;
  progress_.last_event_time = e.time;
  // started/finished/failed/stopped: the whole event (envelope included) as job info.
  auto info = [&]() { return store_.set_job_info(job_id_, e.type(), nlohmann::json(e).dump()); };
  return std::visit(
      Overloaded{
          [&](const ProgressEvent& p) -> Status {
            if (current) {
              progress_.step = p.step;
              progress_.train_loss = finite_metric(p.metrics, "train_loss");
              progress_.tokens_per_s = finite_metric(p.metrics, "tokens_per_s");
              if (p.metrics.count("train_loss") && !progress_.train_loss) {
                progress_.nonfinite_loss = true;
              }
            }
            TrainingSeen seen;
            if (auto samples = finite_metric(p.metrics, "samples_seen")) {
              seen.samples = static_cast<int64_t>(*samples);
            }
            if (auto tokens = finite_metric(p.metrics, "tokens_seen")) {
              seen.tokens = static_cast<int64_t>(*tokens);
            }
            return store_.add_metrics(job_id_, attempt, p.step, finite(p.metrics), seen);
          },
          [&](const EvalEvent& ev) -> Status {
            // The metrics (val_samples and seconds are not leaderboard columns) and the kept
            // predictions.
            if (current && ev.tokens_seen) progress_.evals_with_tokens = true;
            SWEEP_RETURN_IF_ERROR(store_.add_eval(job_id_, attempt, ev.step, finite(ev.metrics),
                                                  TrainingSeen{ev.samples_seen, ev.tokens_seen}));
            std::vector<PredictionRow> rows;
            for (const EvalPrediction& p : ev.predictions)
              rows.push_back(
                  {job_id_, ev.step, p.sample, p.sample_id, p.prompt, p.reference, p.prediction});
            return store_.add_predictions(job_id_, ev.step, rows);
          },
          [&](const CheckpointEvent& c) -> Status { return apply_checkpoint(c); },
          [&](const HeartbeatEvent& h) -> Status {
            if (current) progress_.step = std::max(progress_.step, h.step);
            return ok_status();
          },
          [&](const StartedEvent&) -> Status {
            if (current) progress_.final_event.reset();
            return info();
          },
          [&](const LoraTargetsEvent&) -> Status { return info(); },
          [&](const LearningCheckEvent& check) -> Status {
            return store_.add_learning_check(LearningCheckRow{
                job_id_, check.step, check.passed, check.lora_b_norm, check.lora_grad_norm,
                check.loss_first, check.loss_last, check.reason});
          },
          [&](const auto& end) -> Status {
            using T = std::decay_t<decltype(end)>;
            if constexpr (std::is_same_v<T, UnknownEvent>) {
              return ok_status();  // unknown types are ignored: newer workers may add some
            } else {
              static_assert(std::is_same_v<T, FinishedEvent> || std::is_same_v<T, FailedEvent> ||
                            std::is_same_v<T, StoppedEvent>);
              if (current) progress_.final_event = e;
              return info();
            }
          },
      },
      e.payload);
}

Status Ingestor::apply_checkpoint(const CheckpointEvent& c) {
  SWEEP_RETURN_IF_ERROR(
      store_.add_checkpoint(job_id_, c.step, c.path, metrics_to_json(c.metrics).dump()));
  // The worker's retention policy removed these directories: kept = 0. A path never recorded
  // (its save was interrupted before the event was written) has no row to mark.
  for (const std::string& path : c.deleted) {
    Status st = store_.mark_checkpoint_deleted(job_id_, path);
    if (!st.ok() && st.error().kind != ErrorKind::kNotFound) return st;
  }
  return ok_status();
}

}  // namespace sweep
