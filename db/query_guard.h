// Keeps free SQL (`sweep query`) read-only: while a QueryGuard lives, the connection's authorizer
// refuses every action that could change a database file or the connection (writes, schema
// changes, ATTACH/DETACH, transactions, pragmas other than a few read-only ones). Statements are
// authorized when prepared, so the guard only needs to live across sqlite3_prepare.
#pragma once

#include <string>

struct sqlite3;

namespace sweep {

class QueryGuard {
 public:
  explicit QueryGuard(sqlite3* db);
  ~QueryGuard();
  QueryGuard(const QueryGuard&) = delete;
  QueryGuard& operator=(const QueryGuard&) = delete;

  // What the authorizer refused ("ATTACH", "PRAGMA journal_mode=DELETE", "DELETE on jobs");
  // empty when nothing was refused.
  const std::string& refused() const { return refused_; }
  bool denied() const { return denied_; }
  // True when the statement is a PRAGMA from the read-only list. SQLite does not flag some of
  // them (`PRAGMA journal_mode`) as read-only statements, although without an argument they only
  // report.
  bool read_pragma() const { return read_pragma_; }

 private:
  static int authorize(void* self, int action, const char* arg1, const char* arg2,
                       const char* db_name, const char* trigger);
  sqlite3* db_;
  std::string refused_;
  bool denied_ = false;
  bool read_pragma_ = false;
};

}  // namespace sweep
