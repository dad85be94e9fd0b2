#include "protocol/lora_targets.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <regex>
#include <set>
#include <tuple>
#include <utility>

#include "common/failure.h"

namespace sweep {
namespace {

constexpr size_t kListedMatches = 12;  // matches named per refused entry; the rest are counted

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The two transformers layouts of each part: llava-hf (< 4.52) first, then >= 4.52. A prefix
// ending in "." covers a subtree; lm_head is one module.
struct LayoutPair {
  const char* hf;
  const char* v452;
};
constexpr LayoutPair kLayoutPairs[] = {
    {"language_model.model.", "model.language_model."},
    {"language_model.lm_head", "lm_head"},
    {"vision_tower.", "model.vision_tower."},
    {"multi_modal_projector.", "model.multi_modal_projector."},
};

int component_rank(LoraComponent c) {
  switch (c) {
    case LoraComponent::kVisionTower:
      return 0;
    case LoraComponent::kProjector:
      return 1;
    case LoraComponent::kLanguageModel:
      return 2;
    case LoraComponent::kOther:
      break;
  }
  return 3;
}

// Dotted paths compared segment by segment, numbers as numbers (layers.2 before layers.10).
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      const std::string na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i2, j = j2;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i, ++j;
  }
  return a.size() - i < b.size() - j;
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string(".^$|?*+()[]{}\\").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string alternation(const std::vector<std::string>& parts) {
  if (parts.size() == 1) return parts[0];
  std::string out = "(?:";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "|" : "") + parts[i];
  return out + ")";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// "a, b, c" of at most kListedMatches paths, then "and N more".
std::string list_some(const std::vector<std::string>& paths) {
  std::vector<std::string> shown(paths.begin(),
                                 paths.begin() + std::min(paths.size(), kListedMatches));
  std::string out = join(shown, ", ");
  if (paths.size() > shown.size())
    out += " and " + std::to_string(paths.size() - shown.size()) + " more";
  return out;
}

// Whether entry `entry` may reach a module of part `c` (docs/sweep-file.md, "LoRA targets").
bool may_reach(LoraComponent c, const std::string& entry, bool vision_tower) {
  switch (c) {
    case LoraComponent::kLanguageModel:
      return true;
    case LoraComponent::kVisionTower:
      return vision_tower || contains(entry, "vision_tower");
    case LoraComponent::kProjector:
      return contains(entry, "multi_modal_projector");
    case LoraComponent::kOther:
      break;
  }
  return false;
}

bool entry_matches(const std::string& path, const std::string& entry, bool vision_tower) {
  if (entry == "all-linear") {
    const LoraComponent c = lora_component(path);
    if (path == "language_model.lm_head") return false;
    return c == LoraComponent::kLanguageModel || (vision_tower && c == LoraComponent::kVisionTower);
  }
  return peft_name_matches(path, entry) || peft_name_matches(module_path_452(path), entry);
}

// What `entry` matches outside the parts it may reach, by part: "2 of the vision tower: ...".
std::string describe_out_of_reach(const std::vector<std::string>& out) {
  std::map<std::string, std::vector<std::string>> by_part;
  for (const std::string& p : out) by_part[component_name(lora_component(p))].push_back(p);
  std::vector<std::string> parts;
  for (const auto& [part, paths] : by_part) {
    const std::string what = part == "vision_tower" ? "the vision tower"
                             : part == "projector"  ? "the projector"
                                                    : part;
    parts.push_back(std::to_string(paths.size()) + " of " + what + ": " + list_some(paths));
  }
  return join(parts, "; ");
}

}  // namespace

const char* component_name(LoraComponent c) {
  switch (c) {
    case LoraComponent::kLanguageModel:
      return "language_model";
    case LoraComponent::kProjector:
      return "projector";
    case LoraComponent::kVisionTower:
      return "vision_tower";
    case LoraComponent::kOther:
      break;
  }
  return "other";
}

std::string canonical_module_path(const std::string& module_path) {
  // Longest prefixes first; paths get a trailing "." so a whole module name maps too.
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"model.vision_tower.vision_tower.", "vision_tower."},  // original LLaVA
      {"model.vision_tower.", "vision_tower."},
      {"model.multi_modal_projector.", "multi_modal_projector."},
      {"model.language_model.", "language_model.model."},
      {"model.mm_projector.0.", "multi_modal_projector.linear_1."},
      {"model.mm_projector.2.", "multi_modal_projector.linear_2."},
      {"lm_head.", "language_model.lm_head."},
      {"model.", "language_model.model."},  // original LLaVA LLaMA body
  };
  const std::string dotted = module_path + ".";
  for (const auto& [from, to] : kPrefixes) {
    if (starts_with(dotted, from)) {
      std::string out = to + dotted.substr(std::string(from).size());
      out.pop_back();
      return out;
    }
  }
  return module_path;
}

std::string module_path_452(const std::string& llava_hf_path) {
  for (const LayoutPair& pair : kLayoutPairs) {
    const std::string hf = pair.hf;
    if (hf.back() == '.' ? starts_with(llava_hf_path, hf) : llava_hf_path == hf)
      return pair.v452 + llava_hf_path.substr(hf.size());
  }
  return llava_hf_path;
}

LoraComponent lora_component(const std::string& module_path) {
  const std::string p = canonical_module_path(module_path);
  if (starts_with(p, "language_model.")) return LoraComponent::kLanguageModel;
  if (starts_with(p, "vision_tower.")) return LoraComponent::kVisionTower;
  if (starts_with(p, "multi_modal_projector.")) return LoraComponent::kProjector;
  return LoraComponent::kOther;
}

bool peft_name_matches(const std::string& module_path, const std::string& entry) {
  if (module_path == entry) return true;
  return module_path.size() > entry.size() &&
         module_path.compare(module_path.size() - entry.size(), entry.size(), entry) == 0 &&
         module_path[module_path.size() - entry.size() - 1] == '.';
}

std::map<std::string, int> LoraTargets::counts() const {
  std::map<std::string, int> out = {{"language_model", 0}, {"projector", 0}, {"vision_tower", 0}};
  for (const std::string& m : modules) ++out[component_name(lora_component(m))];
  return out;
}

nlohmann::json LoraTargets::report() const {
  nlohmann::json by_part = {{"language_model", nlohmann::json::array()},
                            {"projector", nlohmann::json::array()},
                            {"vision_tower", nlohmann::json::array()}};
  for (const std::string& m : modules) by_part[component_name(lora_component(m))].push_back(m);
  return {{"counts", counts()}, {"modules", by_part}, {"left_out", left_out}};
}

LoraTargets resolve_lora_targets(const std::vector<std::string>& linear_paths,
                                 const LoraTargetRequest& request) {
  std::set<std::string> wanted, left_out;
  std::vector<std::string> problems;
  if (request.target_regex) {
    std::regex re;
    try {
      re = std::regex(*request.target_regex);
    } catch (const std::regex_error& e) {
      fail(ErrorKind::kUser,
           "lora target_modules regex '" + *request.target_regex + "' is not a regex: " + e.what());
    }
    for (const std::string& p : linear_paths)
      if (std::regex_match(p, re) || std::regex_match(module_path_452(p), re)) wanted.insert(p);
    if (wanted.empty())
      problems.push_back("the regex '" + *request.target_regex + "' matches no Linear module");
  } else {
    for (const std::string& entry : request.target_modules) {
      std::vector<std::string> in, out;
      for (const std::string& p : linear_paths) {
        if (!entry_matches(p, entry, request.vision_tower)) continue;
        (may_reach(lora_component(p), entry, request.vision_tower) ? in : out).push_back(p);
      }
      wanted.insert(in.begin(), in.end());
      if (!in.empty()) {
        left_out.insert(out.begin(), out.end());
      } else if (out.empty()) {
        problems.push_back("'" + entry + "' matches no Linear module of the model");
      } else {
        problems.push_back("'" + entry + "' matches no module of the language model, only " +
                           describe_out_of_reach(out));
      }
    }
    if (request.target_modules.empty()) problems.push_back("the list is empty");
  }
  if (!problems.empty()) {
    const std::string what =
        request.target_regex ? "" : " [" + join(request.target_modules, ", ") + "]";
    fail(ErrorKind::kUser, "lora target_modules" + what + ": " + join(problems, "; "),
         "name Linear modules of the language model (q_proj k_proj v_proj o_proj gate_proj "
         "up_proj down_proj, or all-linear); a vision-tower module is adapted only when named by "
         "a path containing vision_tower (or with lora_vision_tower: true), a projector module "
         "only when named by a path containing multi_modal_projector (train_projector trains "
         "the whole projector)");
  }
  LoraTargets t;
  for (const std::string& p : linear_paths) {
    if (wanted.count(p)) t.modules.push_back(p);
    if (left_out.count(p) && !wanted.count(p)) t.left_out.push_back(p);
  }
  return t;
}

std::vector<std::string> linear_paths_from_tensors(
    const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::set<std::string> paths = {"language_model.lm_head"};
  const std::string suffix = ".weight";
  for (const auto& [name, shape] : shapes) {
    if (shape.size() != 2 || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string module = canonical_module_path(name.substr(0, name.size() - suffix.size()));
    if (contains(module, "embed_tokens") || contains(module, "position_embedding")) continue;
    if (lora_component(module) == LoraComponent::kOther) continue;
    paths.insert(module);
  }
  std::vector<std::string> out(paths.begin(), paths.end());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    const int ra = component_rank(lora_component(a)), rb = component_rank(lora_component(b));
    return ra != rb ? ra < rb : natural_less(a, b);
  });
  return out;
}

std::string adapter_target_regex(const std::vector<std::string>& trained) {
  // Per layout pair: the decoder/encoder layers grouped as layers\.(?:0|1)\.(?:tails), so a 7B
  // model's 224 modules make a regex of a few hundred characters, and other modules listed.
  using LayerKey = std::tuple<size_t, std::string, std::string>;  // pair, head, tail
  std::map<LayerKey, std::set<int>> layers;
  std::map<size_t, std::set<std::string>> plain;
  static const std::regex kLayer(R"(^(.*?)layers\.(\d+)\.(.+)$)");
  for (const std::string& path : trained) {
    for (size_t i = 0; i < std::size(kLayoutPairs); ++i) {
      const std::string hf = kLayoutPairs[i].hf;
      const bool subtree = hf.back() == '.';
      if (subtree ? !starts_with(path, hf) : path != hf) continue;
      const std::string rest = path.substr(hf.size());
      std::smatch m;
      if (subtree && std::regex_match(rest, m, kLayer)) {
        layers[{i, m[1].str(), m[3].str()}].insert(std::stoi(m[2].str()));
      } else {
        plain[i].insert(rest);
      }
      break;
    }
  }
  // (pair, head, layer set) -> tails
  std::map<std::tuple<size_t, std::string, std::set<int>>, std::vector<std::string>> grouped;
  for (const auto& [key, numbers] : layers)
    grouped[{std::get<0>(key), std::get<1>(key), numbers}].push_back(std::get<2>(key));
  auto prefix = [](size_t i) {
    return alternation({regex_escape(kLayoutPairs[i].hf), regex_escape(kLayoutPairs[i].v452)});
  };
  std::vector<std::string> alternatives;
  for (const auto& [key, tails] : grouped) {
    const auto& [pair, head, numbers] = key;
    std::vector<std::string> n, t;
    for (int number : numbers) n.push_back(std::to_string(number));
    for (const std::string& tail : tails) t.push_back(regex_escape(tail));
    alternatives.push_back(prefix(pair) + regex_escape(head) + "layers\\." + alternation(n) +
                           "\\." + alternation(t));
  }
  for (const auto& [pair, rests] : plain) {
    std::vector<std::string> r;
    for (const std::string& rest : rests) r.push_back(regex_escape(rest));
    alternatives.push_back(prefix(pair) + (r.size() == 1 && r[0].empty() ? "" : alternation(r)));
  }
  if (alternatives.empty()) return "(?!)";  // nothing was trained: match nothing
  return alternatives.size() == 1 ? alternatives[0] : alternation(alternatives);
}

}  // namespace sweep
