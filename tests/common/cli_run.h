// Running the built `sweep` binary from a test: its exit code, stdout and stderr kept apart.
// Header-only; the test target defines SWEEP_BIN (the executable's path).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace sweep::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `s` in single quotes for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The whole file; "" when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), n);
    std::fclose(f);
  }
  return text;
}

// Runs `env program args` through the shell; stdout and stderr go to files in `scratch_dir`
// (which must exist) so that both are kept.
inline RunResult run_program(const std::string& program, const std::string& args,
                             const std::string& scratch_dir, const std::string& env = "") {
  const std::string out = scratch_dir + "/out.txt", err = scratch_dir + "/err.txt";
  const std::string cmd = env + " " + shell_quote(program) + " " + args + " >" + shell_quote(out) +
                          " 2>" + shell_quote(err);
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace sweep::testing
