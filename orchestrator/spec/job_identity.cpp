// Job identity: canonical JSON and its hash. The hash is part of the results database (jobs are
// matched to earlier runs by it), so the canonical form must never change silently.
#include "orchestrator/spec/job_identity.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "orchestrator/spec/sweep_spec.h"

namespace sweep {
namespace {

using json = nlohmann::json;

bool is_integral_real(double d) {
  return std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15;
}

void append_number(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += std::isnan(d) ? "\"nan\"" : (d > 0 ? "\"inf\"" : "\"-inf\"");
    return;
  }
  if (d == 0) d = 0;  // -0.0 and 0.0 are the same setting
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  out += buf;
}

// JSON string escaping as nlohmann's dump does it (UTF-8 passed through), without building a
// json value per key: canonical_json runs once per job and must stay cheap at 100k jobs.
void append_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_canonical(std::string& out, const json& v);

// An object's canonical form, without the keys in `skipped` (when given).
void append_object(std::string& out, const json& v,
                   const std::vector<std::string>* skipped = nullptr) {
  out += '{';
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {  // nlohmann objects iterate sorted
    if (skipped && std::find(skipped->begin(), skipped->end(), it.key()) != skipped->end())
      continue;
    if (!first) out += ',';
    first = false;
    append_string(out, it.key());
    out += ':';
    append_canonical(out, it.value());
  }
  out += '}';
}

void append_canonical(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      append_object(out, v);
      return;
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        append_canonical(out, v[i]);
      }
      out += ']';
      return;
    }
    case json::value_t::number_float:
      append_number(out, v.get<double>());
      return;
    case json::value_t::string:
      append_string(out, v.get_ref<const std::string&>());
      return;
    default:  // null, bool, integers: nlohmann's compact dump is already canonical
      out += v.dump();
  }
}

}  // namespace

json normalise_param_value(const ParamSpec& spec, const json& value) {
  switch (spec.type) {
    case ParamType::kInt:
      if (value.is_number_float() && is_integral_real(value.get<double>()))
        return static_cast<long long>(value.get<double>());
      return value;
    case ParamType::kNumber:
      return value.is_number() ? json(value.get<double>()) : value;
    case ParamType::kStringList: {
      if (!value.is_array()) return value;
      std::vector<json> items(value.begin(), value.end());
      if (!std::all_of(items.begin(), items.end(), [](const json& e) { return e.is_string(); }))
        return value;
      std::sort(items.begin(), items.end());
      items.erase(std::unique(items.begin(), items.end()), items.end());
      return json(items);
    }
    case ParamType::kPatternMap: {
      if (!value.is_object()) return value;
      json out = json::object();
      for (auto it = value.begin(); it != value.end(); ++it)
        out[it.key()] = it.value().is_number() ? json(it.value().get<double>()) : it.value();
      return out;
    }
    default:
      return value;
  }
}

std::string fnv1a64_hex(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

std::string canonical_json(const json& value) {
  std::string out;
  append_canonical(out, value);
  return out;
}

json normalise_params(const json& params) {
  if (!params.is_object()) return params;
  json out = json::object();
  for (auto it = params.begin(); it != params.end(); ++it) {
    const ParamSpec* spec = find_param_spec(it.key());
    out[it.key()] = spec ? normalise_param_value(*spec, it.value()) : it.value();
  }
  return out;
}

std::string identity_prefix(const SweepSpec& spec) {
  // The keys of the identity object in canonical (sorted) order: base_model, data, params, v.
  json head = {
      {"base_model", spec.base_model},
      {"data",
       {{"train", spec.data.train},
        {"val", spec.data.val},
        {"image_folder", spec.data.image_folder}}},
  };
  std::string text = canonical_json(head);
  text.pop_back();  // the closing brace: params and v follow
  return text + ",\"params\":";
}

namespace {

// Keys whose ParamSpec says they are not part of a job's identity.
const std::vector<std::string>& keys_outside_identity() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const ParamSpec& s : train_param_specs())
      if (!s.in_identity) out.push_back(s.name);
    return out;
  }();
  return keys;
}

}  // namespace

std::string job_hash_with_prefix(const std::string& prefix, const json& normalised_params) {
  std::string text = prefix;
  if (normalised_params.is_object())
    append_object(text, normalised_params, &keys_outside_identity());
  else
    append_canonical(text, normalised_params);
  // "v" versions the identity: bump it only together with a migration of stored hashes.
  text += ",\"v\":1}";
  return fnv1a64_hex(text);
}

std::string job_hash(const SweepSpec& spec, const json& params) {
  return job_hash_with_prefix(identity_prefix(spec), normalise_params(params));
}

}  // namespace sweep
