#include "events.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "common/failure.h"

namespace sweep {

using json = nlohmann::json;

double unix_time_now() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

namespace {

// Keys of the envelope: never fields, never metrics.
const char* const kEnvelopeKeys[] = {"seq", "time", "type", "attempt"};
// Bookkeeping of an evaluation that may sit beside its metrics (the eval event's own fields, and
// old workers copied them into checkpoint/finished metrics objects): never metrics.
const char* const kEvalBookkeeping[] = {"step", "val_samples", "seconds", "samples_seen",
                                        "tokens_seen"};

template <size_t N>
bool one_of(const std::string& key, const char* const (&keys)[N]) {
  return std::any_of(std::begin(keys), std::end(keys), [&](const char* k) { return key == k; });
}

bool is_envelope(const std::string& key) { return one_of(key, kEnvelopeKeys); }

double metric_value(const json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

json metric_json(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Reads the fields of one event type; every error names the type and the field.
class Fields {
 public:
  Fields(const json& j, const char* what) : j_(j), what_(what) {}

  [[noreturn]] void bad(const std::string& key, const std::string& problem) const {
    fail(ErrorKind::kUser, what_ + ": field '" + key + "' " + problem);
  }

  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<int64_t> opt_integer(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
        return static_cast<int64_t>(d);
    }
    bad(key, "must be an integer, not " + describe(*v));
  }
  int64_t integer(const char* key) const {
    if (auto v = opt_integer(key)) return *v;
    bad(key, "is missing");
  }
  std::optional<double> opt_number(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad(key, "must be a number, not " + describe(*v));
    return v->get<double>();
  }
  std::optional<std::string> opt_string(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) bad(key, "must be a string, not " + describe(*v));
    return v->get<std::string>();
  }
  std::string string(const char* key) const { return opt_string(key).value_or(""); }
  bool boolean(const char* key) const {
    const json* v = find(key);
    if (!v) return false;
    if (!v->is_boolean()) bad(key, "must be true or false, not " + describe(*v));
    return v->get<bool>();
  }

  // A nested metrics object ({"val_loss": 0.7, ...}); null or missing is empty. Evaluation
  // bookkeeping (step, val_samples, seconds, samples/tokens seen) inside it is not a metric and is
  // skipped.
  Metrics metrics_object(const char* key) const {
    const json* v = find(key);
    if (!v) return {};
    if (!v->is_object()) bad(key, "must be an object of metrics, not " + describe(*v));
    return metrics_of(*v, key);
  }
  Metrics metrics_of(const json& object, const std::string& prefix) const {
    Metrics out;
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (one_of(it.key(), kEvalBookkeeping)) continue;
      out[it.key()] = metric(prefix.empty() ? it.key() : prefix + "." + it.key(), *it);
    }
    return out;
  }
  // The flat metrics of progress/eval: every key that is neither envelope nor one of `own`.
  template <size_t N>
  Metrics flat_metrics(const char* const (&own)[N]) const {
    Metrics out;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (is_envelope(it.key()) || one_of(it.key(), own)) continue;
      out[it.key()] = metric(it.key(), *it);
    }
    return out;
  }

 private:
  double metric(const std::string& key, const json& v) const {
    if (!v.is_number() && !v.is_null())
      bad(key, "must be a number (a metric) or null, not " + describe(v));
    return metric_value(v);
  }
  static std::string describe(const json& v) {
    if (v.is_string()) return "the string " + v.dump();
    if (v.is_number()) return "the number " + v.dump();
    if (v.is_object()) return "an object";
    if (v.is_array()) return "a list";
    return v.dump();  // true, false, null
  }

  const json& j_;
  std::string what_;
};

std::string event_what(const char* type) { return std::string(type) + " event"; }

// Metrics written flat beside fields of their own: a clash would overwrite one of them. Checked
// before `j` holds anything: a to_json that throws inside json's constructor leaks what it built.
template <size_t N>
void check_flat_metrics(const Metrics& metrics, const char* type, const char* const (&own)[N]) {
  for (const auto& [name, value] : metrics) {
    if (is_envelope(name) || one_of(name, own)) {
      fail(ErrorKind::kInternal, event_what(type) + ": metric '" + name + "' clashes with a field");
    }
  }
}

void put_flat_metrics(json& j, const Metrics& metrics) {
  for (const auto& [name, value] : metrics) j[name] = metric_json(value);
}

json opt_json(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
json opt_json(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

const char* const kProgressOwn[] = {"step"};
const char* const kEvalOwn[] = {"step",         "val_samples", "seconds",
                                "samples_seen", "tokens_seen", "predictions"};

}  // namespace

json metrics_to_json(const Metrics& metrics) {
  json j = json::object();
  for (const auto& [name, value] : metrics) j[name] = metric_json(value);
  return j;
}

Metrics metrics_from_json(const json& object) {
  if (object.is_null()) return {};
  if (!object.is_object())
    fail(ErrorKind::kUser, "metrics must be a JSON object, not " + std::string(object.type_name()));
  return Fields(object, "metrics").metrics_of(object, "");
}

// --- started -------------------------------------------------------------------------------

void to_json(json& j, const StartedEvent& e) {
  j = json{{"pid", e.pid},           {"host", e.host},
           {"device", e.device},     {"threads", e.threads},
           {"versions", e.versions}, {"resumed_from_step", opt_json(e.resumed_from_step)}};
  if (e.cuda_visible_devices) j["cuda_visible_devices"] = *e.cuda_visible_devices;
}

void from_json(const json& j, StartedEvent& e) {
  Fields f(j, event_what(StartedEvent::kType).c_str());
  e = StartedEvent{};
  e.pid = f.opt_integer("pid").value_or(0);
  e.host = f.string("host");
  e.device = f.string("device");
  e.threads = static_cast<int>(f.opt_integer("threads").value_or(0));
  if (const json* v = f.find("versions")) {
    if (!v->is_object()) f.bad("versions", "must be an object of strings");
    // Shown to people only: a number (a third-party worker's own version) is kept as its text.
    for (auto it = v->begin(); it != v->end(); ++it) {
      e.versions[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    }
  }
  e.resumed_from_step = f.opt_integer("resumed_from_step");
  e.cuda_visible_devices = f.opt_string("cuda_visible_devices");
}

// --- progress ------------------------------------------------------------------------------

void to_json(json& j, const ProgressEvent& e) {
  check_flat_metrics(e.metrics, ProgressEvent::kType, kProgressOwn);
  j = json{{"step", e.step}};
  put_flat_metrics(j, e.metrics);
}

void from_json(const json& j, ProgressEvent& e) {
  Fields f(j, event_what(ProgressEvent::kType).c_str());
  e.step = f.integer("step");
  e.metrics = f.flat_metrics(kProgressOwn);
}

// --- eval ----------------------------------------------------------------------------------

void to_json(json& j, const EvalEvent& e) {
  check_flat_metrics(e.metrics, EvalEvent::kType, kEvalOwn);
  j = json{{"step", e.step}};
  if (e.val_samples) j["val_samples"] = *e.val_samples;
  if (e.seconds) j["seconds"] = *e.seconds;
  if (e.samples_seen) j["samples_seen"] = *e.samples_seen;
  if (e.tokens_seen) j["tokens_seen"] = *e.tokens_seen;
  if (!e.predictions.empty()) {
    json list = json::array();
    for (const EvalPrediction& p : e.predictions) {
      list.push_back({{"sample", p.sample},
                      {"id", p.sample_id},
                      {"prompt", p.prompt},
                      {"reference", p.reference},
                      {"prediction", p.prediction}});
    }
    j["predictions"] = std::move(list);
  }
  put_flat_metrics(j, e.metrics);
}

void from_json(const json& j, EvalEvent& e) {
  Fields f(j, event_what(EvalEvent::kType).c_str());
  e.step = f.integer("step");
  e.val_samples = f.opt_integer("val_samples");
  e.seconds = f.opt_number("seconds");
  e.samples_seen = f.opt_integer("samples_seen");
  e.tokens_seen = f.opt_integer("tokens_seen");
  e.predictions.clear();
  if (const json* v = f.find("predictions")) {
    if (!v->is_array()) f.bad("predictions", "must be a list of objects");
    for (const json& item : *v) {
      if (!item.is_object()) f.bad("predictions", "must be a list of objects");
      Fields p(item, "eval event: predictions entry");
      e.predictions.push_back({p.integer("sample"), p.string("id"), p.string("prompt"),
                               p.string("reference"), p.string("prediction")});
    }
  }
  e.metrics = f.flat_metrics(kEvalOwn);
}

// --- checkpoint ----------------------------------------------------------------------------

void to_json(json& j, const CheckpointEvent& e) {
  j = json{{"step", e.step},
           {"path", e.path},
           {"metrics", metrics_to_json(e.metrics)},
           {"deleted", e.deleted}};
}

void from_json(const json& j, CheckpointEvent& e) {
  Fields f(j, event_what(CheckpointEvent::kType).c_str());
  e.step = f.integer("step");
  e.path = f.string("path");
  if (e.path.empty()) f.bad("path", "is missing");
  e.metrics = f.metrics_object("metrics");
  e.deleted.clear();
  if (const json* v = f.find("deleted")) {
    if (!v->is_array()) f.bad("deleted", "must be a list of paths");
    for (const json& p : *v) {
      if (!p.is_string() || p.get<std::string>().empty())
        f.bad("deleted", "must be a list of paths");
      e.deleted.push_back(p.get<std::string>());
    }
  }
}

// --- finished ------------------------------------------------------------------------------

void to_json(json& j, const FinishedEvent& e) {
  json best = nullptr;
  if (e.best) {
    best = metrics_to_json(e.best->metrics);
    best["step"] = e.best->step;
  }
  j = json{{"step", e.step},
           {"final", metrics_to_json(e.final_metrics)},
           {"best", best},
           {"best_checkpoint", opt_json(e.best_checkpoint)}};
}

void from_json(const json& j, FinishedEvent& e) {
  Fields f(j, event_what(FinishedEvent::kType).c_str());
  e.step = f.opt_integer("step").value_or(0);
  e.final_metrics = f.metrics_object("final");
  e.best.reset();
  if (const json* v = f.find("best")) {
    if (!v->is_object()) f.bad("best", "must be an object {step, metrics...}");
    Fields best(*v, "finished event: best");
    e.best = BestEvaluation{best.integer("step"), best.metrics_of(*v, "")};
  }
  e.best_checkpoint = f.opt_string("best_checkpoint");
}

// --- stopped, failed, heartbeat ------------------------------------------------------------

void to_json(json& j, const StoppedEvent& e) {
  j = json{{"step", e.step}, {"checkpoint", opt_json(e.checkpoint)}};
}

void from_json(const json& j, StoppedEvent& e) {
  Fields f(j, event_what(StoppedEvent::kType).c_str());
  e.step = f.opt_integer("step").value_or(0);
  e.checkpoint = f.opt_string("checkpoint");
}

void to_json(json& j, const FailedEvent& e) {
  j = json{{"stage", e.stage}, {"message", e.message}};
  if (e.diverged) j["diverged"] = true;
  if (e.out_of_memory) j["out_of_memory"] = true;
  if (e.not_learning) j["not_learning"] = true;
  if (e.disk_full) j["disk_full"] = true;
  if (e.bad_input) j["bad_input"] = true;
}

void from_json(const json& j, FailedEvent& e) {
  Fields f(j, event_what(FailedEvent::kType).c_str());
  e.stage = f.string("stage");
  e.message = f.string("message");
  e.diverged = f.boolean("diverged");
  e.out_of_memory = f.boolean("out_of_memory");
  e.not_learning = f.boolean("not_learning");
  e.disk_full = f.boolean("disk_full");
  e.bad_input = f.boolean("bad_input");
}

void to_json(json& j, const HeartbeatEvent& e) { j = json{{"step", e.step}}; }

void from_json(const json& j, HeartbeatEvent& e) {
  Fields f(j, event_what(HeartbeatEvent::kType).c_str());
  e.step = f.opt_integer("step").value_or(0);
}

// --- lora_targets, learning_check ----------------------------------------------------------

void to_json(json& j, const LoraTargetsEvent& e) {
  j = json{{"counts", e.counts}, {"left_out", e.left_out}, {"path", e.path}};
}

void from_json(const json& j, LoraTargetsEvent& e) {
  Fields f(j, event_what(LoraTargetsEvent::kType).c_str());
  e = LoraTargetsEvent{};
  if (const json* v = f.find("counts")) {
    if (!v->is_object()) f.bad("counts", "must be an object of part -> modules");
    Fields counts(*v, "lora_targets event: counts");
    for (auto it = v->begin(); it != v->end(); ++it)
      e.counts[it.key()] = counts.integer(it.key().c_str());
  }
  e.left_out = f.opt_integer("left_out").value_or(0);
  e.path = f.string("path");
}

namespace {
json opt_number_json(const std::optional<double>& v) { return v ? metric_json(*v) : json(nullptr); }
}  // namespace

void to_json(json& j, const LearningCheckEvent& e) {
  j = json{{"step", e.step},
           {"passed", e.passed},
           {"lora_b_norm", opt_number_json(e.lora_b_norm)},
           {"lora_grad_norm", opt_number_json(e.lora_grad_norm)},
           {"loss_first", opt_number_json(e.loss_first)},
           {"loss_last", opt_number_json(e.loss_last)},
           {"reason", e.reason}};
}

void from_json(const json& j, LearningCheckEvent& e) {
  Fields f(j, event_what(LearningCheckEvent::kType).c_str());
  e.step = f.integer("step");
  if (!f.find("passed")) f.bad("passed", "is missing");
  e.passed = f.boolean("passed");
  e.lora_b_norm = f.opt_number("lora_b_norm");
  e.lora_grad_norm = f.opt_number("lora_grad_norm");
  e.loss_first = f.opt_number("loss_first");
  e.loss_last = f.opt_number("loss_last");
  e.reason = f.string("reason");
}

// --- the envelope --------------------------------------------------------------------------

namespace {

template <typename T>
EventPayload decode_as(const json& j) {
  return j.get<T>();
}

using Decoder = EventPayload (*)(const json&);
const std::pair<const char*, Decoder> kDecoders[] = {
    {StartedEvent::kType, decode_as<StartedEvent>},
    {ProgressEvent::kType, decode_as<ProgressEvent>},
    {EvalEvent::kType, decode_as<EvalEvent>},
    {CheckpointEvent::kType, decode_as<CheckpointEvent>},
    {FinishedEvent::kType, decode_as<FinishedEvent>},
    {StoppedEvent::kType, decode_as<StoppedEvent>},
    {FailedEvent::kType, decode_as<FailedEvent>},
    {HeartbeatEvent::kType, decode_as<HeartbeatEvent>},
    {LoraTargetsEvent::kType, decode_as<LoraTargetsEvent>},
    {LearningCheckEvent::kType, decode_as<LearningCheckEvent>},
};

}  // namespace

std::string Event::type() const {
  return std::visit(
      [](const auto& p) -> std::string {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, UnknownEvent>) {
          return p.type;
        } else {
          return T::kType;
        }
      },
      payload);
}

void to_json(json& j, const Event& e) {
  j = std::visit(
      [](const auto& p) -> json {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, UnknownEvent>) {
          return json::object();
        } else {
          return json(p);
        }
      },
      e.payload);
  j["seq"] = e.seq;
  j["time"] = e.time;
  j["type"] = e.type();
  if (e.attempt) j["attempt"] = *e.attempt;
}

Event decode_event(const json& j) {
  if (!j.is_object()) fail(ErrorKind::kUser, "not a JSON object");
  Event ev;
  Fields envelope(j, "event");
  auto seq = envelope.opt_integer("seq");
  if (!seq) envelope.bad("seq", "is missing");
  ev.seq = *seq;
  auto type = envelope.opt_string("type");
  if (!type || type->empty()) envelope.bad("type", "is missing");
  ev.time = envelope.opt_number("time").value_or(0.0);
  if (auto attempt = envelope.opt_integer("attempt")) ev.attempt = static_cast<int>(*attempt);
  ev.payload = UnknownEvent{*type};
  for (const auto& [name, decode] : kDecoders) {
    if (*type != name) continue;
    try {
      ev.payload = decode(j);
    } catch (const Failure& f) {
      fail(f.kind(), "seq " + std::to_string(ev.seq) + ": " + f.error().message, f.error().hint);
    } catch (const json::exception& e) {  // a conversion the field checks missed
      fail(ErrorKind::kUser,
           "seq " + std::to_string(ev.seq) + ": " + *type + " event: " + e.what());
    }
    break;
  }
  return ev;
}

Result<Event> parse_event(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorKind::kUser, "not a JSON object");
  return capture([&] { return decode_event(j); });
}

}  // namespace sweep
