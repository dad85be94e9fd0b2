// Thin RAII wrappers over the SQLite C API: Db owns a connection, Stmt a prepared statement.
// Every call checks its return code; errors are kDatabase with "<what was being done>:
// <sqlite3_errmsg> (<path>)". Not thread-safe, like the Store built on them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sweep {

class Stmt;

class Db {
 public:
  // readonly: SQLITE_OPEN_READONLY (the file must exist); otherwise READWRITE|CREATE.
  static Result<std::unique_ptr<Db>> open(const std::string& path, bool readonly);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs SQL text that may hold several statements and returns no rows.
  Status exec(const std::string& sql, const std::string& what);
  // Prepares the first statement of `sql`; `*tail` (if given) receives the text after it.
  Result<Stmt> prepare(const std::string& sql, const std::string& what,
                       std::string* tail = nullptr);
  // The statement of `sql` prepared once per connection and kept (for statements run per row,
  // such as ingestion's inserts): reset, unbound, and with `what` as its error context. Valid
  // until the Db is destroyed; use it before preparing `sql` again through cached().
  Result<Stmt*> cached(const std::string& sql, const std::string& what);

  int64_t last_insert_rowid() const;
  int changes() const;  // rows changed by the last statement
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

  // A kDatabase error for the connection's last failure: "<what>: <errmsg> (<path>)".
  Error error(const std::string& what) const;

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::map<std::string, std::unique_ptr<Stmt>> cache_;
};

class Stmt {
 public:
  Stmt(const Db* db, sqlite3_stmt* stmt, std::string what)
      : db_(db), stmt_(stmt), what_(std::move(what)) {}
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binds by 1-based index. Return *this's status so that several binds chain through
  // SWEEP_RETURN_IF_ERROR.
  Status bind(int index, int64_t value);
  Status bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Status bind(int index, double value);
  Status bind(int index, const std::string& value);
  Status bind(int index, const char* value) { return bind(index, std::string(value)); }
  Status bind_null(int index);
  Status bind(int index, const std::optional<int>& value);
  Status bind(int index, const std::optional<int64_t>& value);
  Status bind(int index, const std::optional<double>& value);

  // Binds each argument in turn from index 1.
  template <typename... Args>
  Status bind_all(const Args&... args) {
    int index = 0;
    Status status;
    ((status.ok() ? (status = bind(++index, args), 0) : 0), ...);
    return status;
  }

  // true: a row is ready; false: done. Busy/locked and every other failure is an error.
  Result<bool> step();
  // Steps until done (for statements that return no rows).
  Status run();
  Status reset();  // also clears the bindings

  int column_count() const;
  std::string column_name(int col) const;
  bool is_null(int col) const;
  bool is_numeric(int col) const;  // INTEGER or REAL
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;  // "" for NULL
  std::optional<double> opt_real(int col) const;
  std::optional<int> opt_int(int col) const;
  std::optional<int64_t> opt_int64(int col) const;

  bool readonly() const;  // sqlite3_stmt_readonly
  sqlite3_stmt* handle() const { return stmt_; }
  void set_what(std::string what) { what_ = std::move(what); }

 private:
  Status check_bind(int rc, int index);
  const Db* db_;
  sqlite3_stmt* stmt_;
  std::string what_;
};

}  // namespace sweep
