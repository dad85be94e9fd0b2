#include "worker/train/tool_args.h"

#include <iostream>
#include <optional>

#include "protocol/exit_codes.h"

namespace sweep::train {

bool asks_for_help(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") return true;
    // "--name value": the value is not an option ("--prompt -h" asks nothing).
    if (args[i].rfind("--", 0) == 0 && args[i].size() > 2 && args[i].find('=') == std::string::npos)
      ++i;
  }
  return false;
}

ToolArgs::ToolArgs(const std::string& tool, const std::vector<std::string>& args,
                   const std::set<std::string>& known, const std::string& usage)
    : tool_(tool) {
  if (asks_for_help(args)) {
    throw ToolHelpRequested(usage.empty() ? "usage: sweep-worker " + tool + " [OPTIONS]" : usage);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw ToolArgsError(tool_ + ": --" + name + " needs a value");
    }
    if (!known.count(name)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "--" : ", --") + k;
      throw ToolArgsError(tool_ + ": unknown option --" + name + " (known: " + list + ")");
    }
    if (!options_.emplace(name, value).second)
      throw ToolArgsError(tool_ + ": --" + name + " given twice");
  }
}

const std::string& ToolArgs::required(const std::string& name) const {
  auto it = options_.find(name);
  if (it == options_.end()) throw ToolArgsError(tool_ + ": --" + name + " is required");
  return it->second;
}

std::string ToolArgs::get(const std::string& name, const std::string& fallback) const {
  auto it = options_.find(name);
  return it == options_.end() ? fallback : it->second;
}

namespace {

// `parse(text, &used)` over the whole of `text`; nullopt when it throws or stops early.
template <typename T, typename Parse>
std::optional<T> parse_whole(const std::string& text, Parse parse) {
  try {
    size_t used = 0;
    T v = parse(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

int ToolArgs::get_int(const std::string& name, int fallback) const {
  auto it = options_.find(name);
  if (it == options_.end()) return fallback;
  if (auto v = parse_whole<int>(it->second,
                                [](const std::string& t, size_t* u) { return std::stoi(t, u); }))
    return *v;
  throw ToolArgsError(tool_ + ": --" + name + " must be an integer, got '" + it->second + "'");
}

double ToolArgs::get_double(const std::string& name, double fallback) const {
  auto it = options_.find(name);
  if (it == options_.end()) return fallback;
  if (auto v = parse_whole<double>(it->second,
                                   [](const std::string& t, size_t* u) { return std::stod(t, u); }))
    return *v;
  throw ToolArgsError(tool_ + ": --" + name + " must be a number, got '" + it->second + "'");
}

int run_tool(const std::string& tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const ToolHelpRequested& e) {
    std::cout << e.what() << "\n";
    return kExitOk;
  } catch (const ToolArgsError& e) {  // names the tool already
    std::cerr << "sweep-worker " << e.what() << "\n";
  } catch (const std::invalid_argument& e) {
    std::cerr << "sweep-worker " << tool << ": " << e.what() << "\n";
  } catch (const std::runtime_error& e) {
    std::cerr << "sweep-worker " << tool << ": " << e.what() << "\n";
  }
  return kExitBadInput;
}

}  // namespace sweep::train
