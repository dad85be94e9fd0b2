#include "db/sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace sweep {

Result<std::unique_ptr<Db>> Db::open(const std::string& path, bool readonly) {
  sqlite3* raw = nullptr;
  int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;  // one connection per thread; no need for SQLite's own locks
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);  // a handle is returned even on most failures and must be closed
    return make_error(ErrorKind::kDatabase, "opening database " + path + ": " + msg,
                      "check that the directory exists and is writable");
  }
  sqlite3_extended_result_codes(raw, 1);
  return std::unique_ptr<Db>(new Db(raw, path));
}

Db::~Db() {
  cache_.clear();  // finalized before the connection closes
  sqlite3_close_v2(db_);
}

Error Db::error(const std::string& what) const {
  return make_error(ErrorKind::kDatabase, what + ": " + sqlite3_errmsg(db_) + " (" + path_ + ")");
}

Status Db::exec(const std::string& sql, const std::string& what) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return ok_status();
  std::string text = msg ? msg : sqlite3_errstr(rc);
  sqlite3_free(msg);
  return make_error(ErrorKind::kDatabase, what + ": " + text + " (" + path_ + ")");
}

Result<Stmt> Db::prepare(const std::string& sql, const std::string& what, std::string* tail) {
  sqlite3_stmt* raw = nullptr;
  const char* rest = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size() + 1), &raw, &rest);
  if (rc != SQLITE_OK) return error(what);
  if (tail) *tail = rest ? std::string(rest) : std::string();
  return Stmt(this, raw, what);
}

Result<Stmt*> Db::cached(const std::string& sql, const std::string& what) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto stmt = prepare(sql, what);
    if (!stmt.ok()) return stmt.error();
    it = cache_.emplace(sql, std::make_unique<Stmt>(std::move(*stmt))).first;
  } else {
    SWEEP_RETURN_IF_ERROR(it->second->reset());
    it->second->set_what(what);
  }
  return it->second.get();
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Db::changes() const { return sqlite3_changes(db_); }

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), what_(std::move(other.what_)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    what_ = std::move(other.what_);
  }
  return *this;
}

Status Stmt::check_bind(int rc, int index) {
  if (rc == SQLITE_OK) return ok_status();
  return db_->error(what_ + " (binding parameter " + std::to_string(index) + ")");
}

Status Stmt::bind(int index, int64_t value) {
  return check_bind(sqlite3_bind_int64(stmt_, index, value), index);
}
Status Stmt::bind(int index, double value) {
  return check_bind(sqlite3_bind_double(stmt_, index, value), index);
}
Status Stmt::bind(int index, const std::string& value) {
  return check_bind(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                      SQLITE_TRANSIENT),
                    index);
}
Status Stmt::bind_null(int index) { return check_bind(sqlite3_bind_null(stmt_, index), index); }
Status Stmt::bind(int index, const std::optional<int>& value) {
  return value ? bind(index, static_cast<int64_t>(*value)) : bind_null(index);
}

Status Stmt::bind(int index, const std::optional<int64_t>& value) {
  return value ? bind(index, *value) : bind_null(index);
}

Status Stmt::bind(int index, const std::optional<double>& value) {
  return value ? bind(index, *value) : bind_null(index);
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->error(what_);
}

Status Stmt::run() {
  for (;;) {
    auto row = step();
    if (!row.ok()) return row.error();
    if (!*row) return ok_status();
  }
}

Status Stmt::reset() {
  // sqlite3_reset repeats the last step's error, which step() has already reported.
  sqlite3_reset(stmt_);
  return check_bind(sqlite3_clear_bindings(stmt_), 0);
}

int Stmt::column_count() const { return sqlite3_column_count(stmt_); }
std::string Stmt::column_name(int col) const {
  const char* name = sqlite3_column_name(stmt_, col);
  return name ? name : "";
}
bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
bool Stmt::is_numeric(int col) const {
  int type = sqlite3_column_type(stmt_, col);
  return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
}
int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (!p) return "";
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}
std::optional<double> Stmt::opt_real(int col) const {
  if (is_null(col)) return std::nullopt;
  return real(col);
}
std::optional<int> Stmt::opt_int(int col) const {
  if (is_null(col)) return std::nullopt;
  return static_cast<int>(int64(col));
}
std::optional<int64_t> Stmt::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}
bool Stmt::readonly() const { return sqlite3_stmt_readonly(stmt_) != 0; }

}  // namespace sweep
