// The one exception family of the LibTorch-free shared libraries (protocol/, data/): a Failure
// carries an Error (kind, message naming the file, key or sample at fault, hint). Code that
// returns Result turns a call that may throw into a value with `capture`, the one place where
// exceptions become errors: a Failure keeps its kind, anything else is a bug (kInternal).
//
// The worker throws too (LibTorch does); its main catches once and maps the kind to an exit code.
#pragma once

#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "common/result.h"

namespace sweep {

class Failure : public std::runtime_error {
 public:
  explicit Failure(Error error) : std::runtime_error(error.to_string()), error_(std::move(error)) {}
  const Error& error() const { return error_; }
  ErrorKind kind() const { return error_.kind; }

 private:
  Error error_;
};

[[noreturn]] inline void fail(ErrorKind kind, std::string message, std::string hint = {}) {
  throw Failure(make_error(kind, std::move(message), std::move(hint)));
}

// The Error that an exception in flight stands for. Call only inside a catch block.
inline Error current_error() {
  try {
    throw;
  } catch (const Failure& f) {
    return f.error();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorKind::kInternal, "out of memory");
  } catch (const std::exception& e) {
    return make_error(ErrorKind::kInternal, e.what());
  } catch (...) {
    return make_error(ErrorKind::kInternal, "unknown exception");
  }
}

// Runs `f` and returns its value (or Status for void) or the error it threw.
template <typename F>
auto capture(F&& f) -> Result<std::invoke_result_t<F>> {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
      std::forward<F>(f)();
      return ok_status();
    } else {
      return std::forward<F>(f)();
    }
  } catch (...) {
    return current_error();
  }
}

}  // namespace sweep
