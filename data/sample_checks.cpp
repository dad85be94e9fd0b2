#include "data/sample_checks.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "data/conversation.h"
#include "data/text_util.h"

namespace sweep::data {
namespace {

using nlohmann::json;

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower(a[i - 1]) == std::tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Collects the problems of one sample with its index and id.
class SampleProblems {
 public:
  SampleProblems(int64_t index, std::vector<DataProblem>* out) : index_(index), out_(out) {}
  void set_id(std::string id) { id_ = std::move(id); }
  void error(const std::string& kind, const std::string& message, const std::string& hint = {}) {
    out_->push_back(DataProblem{kind, index_, id_, message, true, hint});
    ++errors_;
  }
  void warning(const std::string& kind, const std::string& message, const std::string& hint = {}) {
    out_->push_back(DataProblem{kind, index_, id_, message, false, hint});
  }
  int errors() const { return errors_; }

 private:
  int64_t index_;
  std::string id_;
  std::vector<DataProblem>* out_;
  int errors_ = 0;
};

// Unknown keys: a near-miss of a known key is an error (the field it meant is silently
// missing), anything else a warning (extra metadata LLaVA ignores).
void check_extra_keys(const json& obj, const std::vector<std::string>& known,
                      const std::string& where, SampleProblems* p) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string closest;
    for (const std::string& k : known) {
      if (edit_distance(key, k) <= 2) closest = k;
    }
    if (!closest.empty()) {
      p->error("extra_field", where + "unknown field \"" + key + "\"",
               "did you mean \"" + closest + "\"?");
    } else {
      p->warning("extra_field", where + "unknown field \"" + key + "\" (ignored)");
    }
  }
}

std::string quoted_type(const json& v) { return std::string(v.type_name()); }

// "id": a string or an integer (kept as its decimal text); optional.
void read_id(json& obj, SampleProblems* p, Sample* s) {
  auto it = obj.find("id");
  if (it == obj.end()) {
    p->warning("missing_field", "no \"id\" (samples are named by index)");
  } else if (it->is_string()) {
    s->id = std::move(it->get_ref<std::string&>());
  } else if (it->is_number_integer()) {
    s->id = it->dump();
  } else {
    p->error("wrong_type", "\"id\" is a " + quoted_type(*it) + ", expected a string");
  }
  p->set_id(s->id);
}

void read_image(json& obj, SampleProblems* p, Sample* s) {
  auto it = obj.find("image");
  if (it == obj.end()) return;
  if (!it->is_string()) {
    p->error("wrong_type", "\"image\" is a " + quoted_type(*it) + ", expected a string path",
             "omit \"image\" for a text-only sample");
  } else if (strip(it->get_ref<const std::string&>()).empty()) {
    p->error("empty_value", "\"image\" is empty", "omit \"image\" for a text-only sample");
  } else {
    s->image = std::move(it->get_ref<std::string&>());
  }
}

// What of one turn could be used: its role (a string naming a known role) and its value (a
// string, maybe empty).
struct TurnRead {
  bool role_ok = false;
  bool value_ok = false;
};

TurnRead read_turn(json& turn, size_t j, SampleProblems* p, Turn* out) {
  const std::string where = "conversations[" + std::to_string(j) + "]";
  TurnRead read;
  if (!turn.is_object()) {
    p->error("wrong_type", where + " is a " + quoted_type(turn) +
                               ", expected an object {\"from\": ..., \"value\": ...}");
    return read;
  }
  for (const char* key : {"from", "value"}) {
    auto it = turn.find(key);
    if (it == turn.end()) {
      p->error("missing_field", where + " has no \"" + key + "\"");
    } else if (!it->is_string()) {
      p->error("wrong_type",
               where + "." + key + " is a " + quoted_type(*it) + ", expected a string");
    } else {
      (key[0] == 'f' ? out->from : out->value) = std::move(it->get_ref<std::string&>());
      (key[0] == 'f' ? read.role_ok : read.value_ok) = true;
    }
  }
  check_extra_keys(turn, {"from", "value"}, where + ": ", p);
  if (read.role_ok && out->from != "human" && out->from != "gpt") {
    p->error("unknown_role", where + ".from is \"" + out->from + "\"",
             "LLaVA's roles are \"human\" and \"gpt\"");
    read.role_ok = false;
  }
  if (read.value_ok && strip(out->value).empty()) {
    p->error("empty_value", where + ".value is empty",
             out->from == "gpt" ? "an empty answer trains on nothing; drop the turn pair"
                                : "write the question, or drop the turn pair");
  }
  return read;
}

// Roles alternate human/gpt after an optional leading gpt turn, which LLaVA drops.
void check_roles(const std::vector<Turn>& turns, SampleProblems* p) {
  const size_t start = turns[0].from == "gpt" ? 1 : 0;
  if (start == 1) {
    p->warning("leading_gpt_turn", "conversations[0] is from \"gpt\"; LLaVA drops it");
  }
  for (size_t j = start; j < turns.size(); ++j) {
    const char* expected = (j - start) % 2 == 0 ? "human" : "gpt";
    if (turns[j].from != expected) {
      p->error("roles_not_alternating",
               "conversations[" + std::to_string(j) + "] is from \"" + turns[j].from +
                   "\" after a \"" + turns[j].from + "\" turn",
               "turns must alternate human, gpt, human, gpt, ...");
      return;
    }
  }
  if (turns.size() <= start + 1) {
    p->error("no_answer", "no \"gpt\" turn answers the first question",
             "a sample without an answer trains on nothing");
  } else if ((turns.size() - start) % 2 == 1) {
    p->warning("unanswered_turn", "the last turn (conversations[" +
                                      std::to_string(turns.size() - 1) +
                                      "]) is a question without an answer; it is not trained on");
  }
}

// An image sample carries <image> exactly once, in its first human turn; a text-only one never.
// `image_sample`: the sample has an "image" field, even one that could not be read.
void check_image_token(const Sample& s, bool image_sample, SampleProblems* p) {
  const auto& turns = s.conversations;
  const size_t first_human = turns[0].from == "gpt" ? 1 : 0;
  std::vector<size_t> elsewhere;
  size_t in_first = 0;
  for (size_t j = 0; j < turns.size(); ++j) {
    const size_t n = count_occurrences(turns[j].value, kImageToken);
    if (j == first_human) {
      in_first = n;
    } else if (n > 0) {
      elsewhere.push_back(j);
    }
  }
  const std::string first = "conversations[" + std::to_string(first_human) + "]";
  if (!image_sample) {
    if (in_first > 0 || !elsewhere.empty()) {
      const size_t j = in_first > 0 ? first_human : elsewhere[0];
      p->error("image_token_without_image",
               "conversations[" + std::to_string(j) +
                   "] carries <image> but the sample has no "
                   "\"image\"",
               "add the \"image\" field, or remove <image>");
    }
    return;
  }
  if (in_first == 0) {
    p->error(
        "image_token_missing",
        "the first human turn (" + first + ") has no <image>" +
            (elsewhere.empty() ? ""
                               : " (it is in conversations[" + std::to_string(elsewhere[0]) + "])"),
        "start the first question with \"<image>\\n\"");
  } else if (in_first > 1) {
    p->error("image_token_repeated",
             first + " carries <image> " + std::to_string(in_first) + " times; one expected",
             "one image per sample: keep a single <image>");
  } else if (!elsewhere.empty()) {
    p->error("image_token_repeated",
             "conversations[" + std::to_string(elsewhere[0]) +
                 "] also carries <image>; only the first human turn may",
             "one image per sample: keep a single <image>");
  }
}

}  // namespace

bool check_sample(json& element, int64_t index, std::vector<DataProblem>* problems, Sample* out) {
  SampleProblems p(index, problems);
  if (!element.is_object()) {
    p.error("sample_not_object", "the sample is a " + quoted_type(element) +
                                     ", expected an object {\"id\", \"image\", \"conversations\"}");
    return false;
  }
  Sample& s = *out;
  s = Sample{};
  read_id(element, &p, &s);
  read_image(element, &p, &s);
  check_extra_keys(element, {"id", "image", "conversations"}, "", &p);
  auto conv = element.find("conversations");
  if (conv == element.end()) {
    p.error("missing_field", "no \"conversations\"");
    return false;
  }
  if (!conv->is_array()) {
    p.error("wrong_type", "\"conversations\" is a " + quoted_type(*conv) +
                              ", expected an array of {\"from\", \"value\"} turns");
    return false;
  }
  if (conv->empty()) {
    p.error("empty_conversation", "\"conversations\" is empty");
    return false;
  }
  // Each check runs on what it needs, so one bad turn does not hide the other problems.
  bool roles_ok = true, values_ok = true;
  s.conversations.resize(conv->size());
  for (size_t j = 0; j < conv->size(); ++j) {
    const TurnRead read = read_turn((*conv)[j], j, &p, &s.conversations[j]);
    roles_ok = roles_ok && read.role_ok;
    values_ok = values_ok && read.value_ok;
  }
  if (roles_ok) check_roles(s.conversations, &p);
  if (roles_ok && values_ok) check_image_token(s, element.contains("image"), &p);
  return p.errors() == 0;
}

int64_t for_each_array_element(const std::string& path,
                               const std::function<void(int64_t, json&)>& on_element,
                               std::vector<DataProblem>* problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    problems->push_back(DataProblem{"file_unreadable", -1, "", "cannot open " + path, true,
                                    "check the path of the data file"});
    return 0;
  }
  int64_t index = 0;
  bool first_event = true, is_array = true;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (first_event) {
      first_event = false;
      is_array = depth == 0 && event == json::parse_event_t::array_start;
    }
    if (!is_array) return depth == 0;
    if (depth != 1) return true;
    if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end ||
        event == json::parse_event_t::value) {
      on_element(index++, parsed);
      return false;  // drop it from the tree being built
    }
    return true;
  };
  try {
    const json rest =  // the top level without its elements, all dropped by the callback
        json::parse(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), callback);
    (void)rest;
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    problems->push_back(DataProblem{"invalid_json", -1, "", what, true,
                                    "the file must be one JSON array of samples"});
    return index;
  }
  if (!is_array) {
    problems->push_back(DataProblem{"not_an_array", -1, "", "the top level is not a JSON array",
                                    true, "LLaVA data is a JSON array of samples: [{...}, ...]"});
  }
  return index;
}

std::string describe(const DataProblem& p) {
  std::string out;
  if (p.index >= 0) {
    out = "sample " + std::to_string(p.index) + (p.id.empty() ? "" : " (id " + p.id + ")") + ": ";
  }
  out += p.message;
  if (!p.hint.empty()) out += " (hint: " + p.hint + ")";
  return out;
}

}  // namespace sweep::data
