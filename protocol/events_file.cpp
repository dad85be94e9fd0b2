// The events file on disk: EventWriter appends one event per line (continuing a resumed
// attempt's seq, starting on a fresh line after a killed writer's fragment), EventTail reads the
// complete lines added since its offset, recovering an event glued onto a fragment. The event
// types and their JSON are in events.cpp.
#include "events.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "common/failure.h"
#include "common/file_system.h"

namespace sweep {

using json = nlohmann::json;

// --- EventWriter ---------------------------------------------------------------------------

struct EventWriter::Impl {
  std::mutex mu;
  std::string path;
  int attempt = 1;
  int64_t seq = 0;
};

namespace {

// The seq of a line, read from the envelope alone (what a writer must continue after, even when
// the rest of the line does not decode).
std::optional<int64_t> envelope_seq(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("seq");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// The highest seq in an existing events file (0 when none), so a resumed attempt continues it.
int64_t last_seq_in(const std::string& path) {
  std::ifstream in(path);
  int64_t last = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (auto seq = envelope_seq(line)) last = std::max(last, *seq);
  }
  return last;
}

// True when the file's last byte is not a newline: an attempt was killed mid-line.
bool ends_mid_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return false;
  in.seekg(-1, std::ios::end);
  return in.get() != '\n';
}

}  // namespace

EventWriter::EventWriter(std::string path, int attempt) : impl_(new Impl) {
  impl_->path = std::move(path);
  impl_->attempt = attempt;
  impl_->seq = last_seq_in(impl_->path);
  try {
    append_to_file(impl_->path, "");  // creates it: an unwritable file fails here, not later
    // A killed attempt may have left half a line: this attempt's events start on a line of their
    // own, so a reader drops only that fragment (with a warning), never the next event.
    if (ends_mid_line(impl_->path)) append_to_file(impl_->path, "\n");
  } catch (...) {
    delete impl_;
    throw;
  }
}

EventWriter::~EventWriter() { delete impl_; }

void EventWriter::write(const char* type, const json& fields) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  json ev = fields;
  ev["seq"] = impl_->seq + 1;
  ev["time"] = unix_time_now();
  ev["type"] = type;
  ev["attempt"] = impl_->attempt;
  // Metrics are finite or null already; `replace` keeps a bad UTF-8 byte in a message writable.
  std::string line = ev.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  // The whole line or nothing (a failed append is cut back); its seq is used only once written.
  append_to_file(impl_->path, line);
  ++impl_->seq;
}

int64_t EventWriter::last_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->seq;
}

// --- EventTail -----------------------------------------------------------------------------

namespace {

// A line cut short by a killed writer with the next attempt's first event glued on (a writer
// that did not start on a new line): the fragment's length and the event, when some suffix
// starting at a '{' is a whole event. A fragment left open cannot close around a whole object,
// so the first such suffix is the glued event.
std::optional<std::pair<size_t, Result<Event>>> split_glued_event(const std::string& line) {
  constexpr int kMaxTries = 64;  // a garbage line full of braces costs a bounded number of parses
  int tries = 0;
  for (size_t at = line.find('{', 1); at != std::string::npos && tries < kMaxTries;
       at = line.find('{', at + 1), ++tries) {
    auto ev = parse_event(line.substr(at));
    if (ev.ok()) return std::make_pair(at, std::move(ev));
  }
  return std::nullopt;
}

}  // namespace

EventTail::EventTail(std::string path, uint64_t offset) : path_(std::move(path)), offset_(offset) {
  if (offset_ == 0) line_ = 1;
}

int64_t EventTail::first_line() {
  if (!line_) {
    // Started mid-file (a cursor from the database): count the lines before it, once.
    int64_t lines = 1;
    if (std::FILE* f = std::fopen(path_.c_str(), "rb")) {
      char buf[1 << 16];
      uint64_t left = offset_;
      size_t n;
      while (left > 0 && (n = std::fread(buf, 1, std::min<uint64_t>(sizeof buf, left), f)) > 0) {
        lines += std::count(buf, buf + n, '\n');
        left -= n;
      }
      std::fclose(f);
    }
    line_ = lines;
  }
  return *line_;
}

std::vector<Event> EventTail::poll(std::vector<Error>* errors) {
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
  int64_t lines = 0;  // complete lines read in this poll
  for (size_t nl; (nl = chunk.find('\n', start)) != std::string::npos; start = nl + 1, ++lines) {
    if (nl == start) continue;
    std::string line = chunk.substr(start, nl - start);
    auto ev = parse_event(line);
    auto report = [&](Error e) {
      if (!errors) return;
      e.message = path_ + ":" + std::to_string(first_line() + lines) + ": " + e.message;
      errors->push_back(std::move(e));
    };
    if (!ev.ok()) {
      if (auto glued = split_glued_event(line)) {
        report(Error{ErrorKind::kUser,
                     "a partial line of " + std::to_string(glued->first) +
                         " bytes (a worker killed mid-write) was discarded before the next event",
                     ""});
        ev = std::move(glued->second);
      }
    }
    if (ev.ok()) {
      out.push_back(std::move(*ev));
    } else {
      report(ev.error());
    }
  }
  offset_ += start;
  if (line_) *line_ += lines;
  return out;
}

}  // namespace sweep
