#include "orchestrator/spec/yaml_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <utility>
#include <vector>

#include <yaml-cpp/eventhandler.h>

#include "orchestrator/spec/closest_key.h"

namespace sweep {
namespace {

using json = nlohmann::json;

bool is_quoted_or_str(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

// Plain scalar resolution of the YAML 1.2 core schema, plus "1e-4" (no dot) as a real, which
// YAML 1.1 would read as a string but every user means as a number.
json resolve_plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt(R"([-+]?[0-9]+)");
  static const std::regex kReal(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, kInt)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return v;
  }
  if (std::regex_match(s, kReal)) return std::strtod(s.c_str(), nullptr);
  if (s == ".inf" || s == "+.inf" || s == ".Inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf") return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN") return std::numeric_limits<double>::quiet_NaN();
  return s;
}

// The 0-based line and column (in characters) of the first byte of `text` that does not start a
// valid UTF-8 sequence (overlong forms, surrogates and code points above U+10FFFF included), or
// nullopt when the whole text is valid. The JSON built from the file (messages, job hashes) needs
// UTF-8.
std::optional<YAML::Mark> first_invalid_utf8(const std::string& text) {
  YAML::Mark mark;
  mark.line = 0;
  mark.column = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 1;
    uint32_t lo = 0, cp = c;
    if (c >= 0xF0 && c <= 0xF4) {
      len = 4, lo = 0x10000, cp = c & 0x07;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, lo = 0x800, cp = c & 0x0F;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2, lo = 0x80, cp = c & 0x1F;
    } else if (c >= 0x80) {
      mark.pos = static_cast<int>(i);
      return mark;
    }
    if (i + len > n) {
      mark.pos = static_cast<int>(i);
      return mark;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        mark.pos = static_cast<int>(i);
        return mark;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < lo || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      mark.pos = static_cast<int>(i);
      return mark;
    }
    if (c == '\n') {
      ++mark.line;
      mark.column = 0;
    } else {
      ++mark.column;
    }
    i += len;
  }
  return std::nullopt;
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  return s;
}

// Counts the nodes of a document as if every alias were replaced by a copy of its anchored node,
// from the parser's events, so that a file of nested aliases ("billion laughs") is refused before
// anything walks it: yaml-cpp shares an aliased node, but every check and the conversion to JSON
// visit each use of it.
class ExpansionCounter : public YAML::EventHandler {
 public:
  struct TooLarge {
    YAML::Mark mark;
    std::string anchor;
  };

  explicit ExpansionCounter(uint64_t limit) : limit_(limit) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { pending_name_ = name; }
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    add(it == anchors_.end() ? 1 : it->second.size, mark,
        it == anchors_.end() ? std::string() : it->second.name);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Anchor {
    std::string name;
    uint64_t size = 0;  // nodes of the anchored node, its aliases expanded (at most limit_)
  };
  struct Open {
    YAML::anchor_t anchor;
    std::string name;
    uint64_t start;
  };

  // `total_` never passes limit_ by more than one alias's size (itself at most limit_), so it
  // cannot overflow.
  void add(uint64_t nodes, const YAML::Mark& mark, const std::string& anchor) {
    total_ += nodes;
    if (total_ > limit_) throw TooLarge{mark, anchor};
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(1, mark, "");
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Anchor{take_name(), 1};
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    stack_.push_back(Open{anchor, anchor != YAML::NullAnchor ? take_name() : "", total_});
    add(1, mark, "");
  }
  void close() {
    Open o = stack_.back();
    stack_.pop_back();
    if (o.anchor != YAML::NullAnchor) anchors_[o.anchor] = Anchor{o.name, total_ - o.start};
  }
  std::string take_name() { return std::exchange(pending_name_, std::string()); }

  uint64_t limit_;
  uint64_t total_ = 0;
  std::string pending_name_;
  std::map<YAML::anchor_t, Anchor> anchors_;
  std::vector<Open> stack_;
};

}  // namespace

Status YamlReader::check_alias_expansion(const std::string& text) const {
  std::istringstream in(text);
  ExpansionCounter counter(kMaxExpandedNodes);
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(counter);
  } catch (const ExpansionCounter::TooLarge& e) {
    return error_at(
        e.mark,
        "the document expands to more than " + std::to_string(kMaxExpandedNodes) +
            " YAML nodes once its aliases are replaced" +
            (e.anchor.empty() ? std::string() : " (at alias *" + e.anchor + ")"),
        "a sweep file needs far fewer; write the values out or use fewer nested aliases");
  } catch (const YAML::ParserException&) {
    // Syntax errors are reported by load() with their position.
  }
  return ok_status();
}

Result<YAML::Node> YamlReader::load(const std::string& text) const {
  if (auto bad = first_invalid_utf8(text)) {
    return error_at(*bad,
                    "the sweep file is not valid UTF-8 (byte " + std::to_string(bad->pos) + ")",
                    "save the file as UTF-8");
  }
  SWEEP_RETURN_IF_ERROR(check_alias_expansion(text));
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return error_at(e.mark, "YAML syntax error: " + e.msg,
                    "check indentation, brackets and quotes near this position");
  }
}

Error YamlReader::error_at(const YAML::Mark& mark, const std::string& message,
                           std::string hint) const {
  // yaml-cpp marks are 0-based; a null mark (-1) means "somewhere in the file".
  std::string where = source_;
  if (mark.line >= 0) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return make_error(ErrorKind::kUser, where + ": " + message, std::move(hint));
}

Error YamlReader::error_at(const YAML::Node& node, const std::string& message,
                           std::string hint) const {
  return error_at(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), message,
                  std::move(hint));
}

Status YamlReader::check_duplicate_keys(const YAML::Node& root) const {
  if (root.IsSequence()) {
    for (const YAML::Node& e : root) SWEEP_RETURN_IF_ERROR(check_duplicate_keys(e));
  } else if (root.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.Scalar();
      auto [pos, inserted] = seen.emplace(key, it->first.Mark());
      if (!inserted) {
        return error_at(it->first,
                        "duplicate key '" + key + "' (first at line " +
                            std::to_string(pos->second.line + 1) + ")",
                        "keep one of the two; a later key would silently replace the earlier");
      }
      SWEEP_RETURN_IF_ERROR(check_duplicate_keys(it->second));
    }
  }
  return ok_status();
}

Status YamlReader::check_mapping(const YAML::Node& node, const std::string& path,
                                 const std::vector<std::string>& known, bool null_is_empty) const {
  if (null_is_empty && node.IsNull()) return ok_status();
  if (!node.IsMap()) {
    return error_at(node, (path.empty() ? "the file" : path) + " must be a mapping (key: value)",
                    "allowed keys: " + join_keys(known));
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return error_at(it->first, "a key must be a plain word");
    const std::string key = it->first.Scalar();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string near = closest_key(key, known);
    std::string hint =
        near.empty() ? "allowed keys: " + join_keys(known) : "did you mean " + near + "?";
    std::string where = path.empty() ? "at the top level" : "in " + path;
    return error_at(it->first, "unknown key '" + key + "' " + where, hint);
  }
  return ok_status();
}

json YamlReader::to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return is_quoted_or_str(node) ? json(node.Scalar()) : resolve_plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const YAML::Node& e : node) arr.push_back(to_json(e));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (auto it = node.begin(); it != node.end(); ++it)
        obj[it->first.Scalar()] = to_json(it->second);
      return obj;
    }
    default:
      return nullptr;
  }
}

std::string YamlReader::describe(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsNull() || !node.IsDefined()) return "(empty)";
  return to_json(node).dump();
}

std::string YamlReader::join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

}  // namespace sweep
