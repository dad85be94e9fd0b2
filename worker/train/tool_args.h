// Argument parsing for sweep-worker's model tools (predict, score, merge, make-builtin):
// positionals plus "--name value" options, each allowed once. LibTorch-free.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sweep::train {

// A bad command line; what() starts with the tool's name ("score: --threads must be ...").
class ToolArgsError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// `--help` or `-h` was given: what() is the tool's usage, which run_tool prints to stdout
// before returning 0.
class ToolHelpRequested : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when `args` hold `--help` or `-h` (as an option, not as the value of one).
bool asks_for_help(const std::vector<std::string>& args);

class ToolArgs {
 public:
  // `known` lists the option names (without "--") the tool accepts. Throws ToolHelpRequested
  // carrying `usage` when the arguments hold `--help` or `-h` (whatever else they hold), else
  // ToolArgsError naming the tool and the option for an unknown option, a repeated one or one
  // without a value.
  ToolArgs(const std::string& tool, const std::vector<std::string>& args,
           const std::set<std::string>& known, const std::string& usage = "");

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool has(const std::string& name) const { return options_.count(name) > 0; }
  // Throws ToolArgsError "<tool>: --name is required" when absent.
  const std::string& required(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int get_int(const std::string& name, int fallback) const;
  double get_double(const std::string& name, double fallback) const;

 private:
  std::string tool_;
  std::vector<std::string> positionals_;
  std::map<std::string, std::string> options_;
};

// Runs a tool's body: ToolHelpRequested prints the usage to stdout and returns 0;
// std::invalid_argument and std::runtime_error (bad options, missing or
// malformed files; their messages name the culprit) print "sweep-worker <tool>: <message>" and
// return 1; other exceptions propagate to main (exit 2).
int run_tool(const std::string& tool, const std::function<int()>& body);

}  // namespace sweep::train
