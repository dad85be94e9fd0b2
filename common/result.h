// Errors as values for the orchestrator side (db/, orchestrator/): a fixed set of kinds, a
// message that names the file, key or job at fault, and an optional hint on how to fix it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sweep {

enum class ErrorKind {
  kUser,      // bad input: spec file, flag, SQL the user typed (exit code 1)
  kNotFound,  // a named thing does not exist (exit code 1)
  kConflict,  // another process holds the resource (exit code 1)
  kIo,        // file system failure (exit code 2)
  kDatabase,  // SQLite failure; message carries sqlite3_errmsg (exit code 2)
  kInternal,  // a bug (exit code 2)
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  std::string hint;  // empty when there is nothing useful to suggest

  // Exit code for a command that stops on this error (docs/architecture.md, "Errors").
  int exit_code() const {
    return kind == ErrorKind::kUser || kind == ErrorKind::kNotFound || kind == ErrorKind::kConflict
               ? 1
               : 2;
  }
  // "message (hint: ...)" on one line.
  std::string to_string() const {
    return hint.empty() ? message : message + " (hint: " + hint + ")";
  }
};

inline Error make_error(ErrorKind kind, std::string message, std::string hint = {}) {
  return Error{kind, std::move(message), std::move(hint)};
}

// The same error with "context: " in front of its message (the key or flag it came through).
inline Error with_context(Error error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

// Result<T>: a value or an Error. Result<void> (alias Status) carries only the error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

}  // namespace sweep

// Propagates an error from an expression returning Status or Result<T>.
#define SWEEP_RETURN_IF_ERROR(expr)                        \
  do {                                                     \
    auto sweep_status_ = (expr);                           \
    if (!sweep_status_.ok()) return sweep_status_.error(); \
  } while (0)
