#include "events.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace sweep {

using json = nlohmann::json;

double unix_time_now() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

struct EventWriter::Impl {
  std::mutex mu;
  std::FILE* file = nullptr;
  std::string path;
  int attempt = 1;
  int64_t seq = 0;
};

namespace {

// The highest seq in an existing events file (0 when none), so a resumed attempt continues it.
int64_t last_seq_in(const std::string& path) {
  std::ifstream in(path);
  int64_t last = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::string err;
    if (auto ev = parse_event(line, &err)) last = std::max(last, ev->seq);
  }
  return last;
}

}  // namespace

EventWriter::EventWriter(std::string path, int attempt) : impl_(new Impl) {
  impl_->path = std::move(path);
  impl_->attempt = attempt;
  impl_->seq = last_seq_in(impl_->path);
  impl_->file = std::fopen(impl_->path.c_str(), "ab");
  if (!impl_->file) {
    std::string msg = impl_->path + ": cannot open events file for appending: " + std::strerror(errno);
    delete impl_;
    throw std::runtime_error(msg);
  }
}

EventWriter::~EventWriter() {
  if (impl_->file) std::fclose(impl_->file);
  delete impl_;
}

void EventWriter::emit(const std::string& type, json fields) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  json ev = json::object();
  ev["seq"] = ++impl_->seq;
  ev["time"] = unix_time_now();
  ev["type"] = type;
  ev["attempt"] = impl_->attempt;
  for (auto& [k, v] : fields.items()) ev[k] = std::move(v);
  // NaN/inf are not JSON: dump() writes them as null, which readers treat as "not a number".
  std::string line = ev.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), impl_->file) != line.size() ||
      std::fflush(impl_->file) != 0) {
    throw std::runtime_error(impl_->path + ": cannot write event: " + std::strerror(errno));
  }
}

int64_t EventWriter::last_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->seq;
}

std::optional<Event> parse_event(const std::string& line, std::string* error) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    if (error) *error = "not a JSON object";
    return std::nullopt;
  }
  if (!j.contains("seq") || !j["seq"].is_number_integer() || !j.contains("type") ||
      !j["type"].is_string()) {
    if (error) *error = "missing integer 'seq' or string 'type'";
    return std::nullopt;
  }
  Event ev;
  ev.seq = j["seq"].get<int64_t>();
  ev.time = j.contains("time") && j["time"].is_number() ? j["time"].get<double>() : 0.0;
  ev.type = j["type"].get<std::string>();
  ev.body = std::move(j);
  return ev;
}

EventTail::EventTail(std::string path, uint64_t offset) : path_(std::move(path)), offset_(offset) {}

std::vector<Event> EventTail::poll(std::vector<std::string>* errors) {
  std::vector<Event> out;
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  if (!f) return out;
  if (std::fseek(f, static_cast<long>(offset_), SEEK_SET) != 0) {
    std::fclose(f);
    return out;
  }
  std::string chunk;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) chunk.append(buf, n);
  std::fclose(f);

  size_t start = 0;
  for (size_t nl; (nl = chunk.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = chunk.substr(start, nl - start);
    if (line.empty()) continue;
    std::string err;
    if (auto ev = parse_event(line, &err)) {
      out.push_back(std::move(*ev));
    } else if (errors) {
      errors->push_back(path_ + " at byte " + std::to_string(offset_ + start) + ": " + err);
    }
  }
  offset_ += start;
  return out;
}

}  // namespace sweep
