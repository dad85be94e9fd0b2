// Opening, migrating and transactions; sweeps, jobs and attempts. Ingestion lives in
// store_ingest.cpp, results and free queries in store_results.cpp.
#include "db/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "db/schema.h"
#include "db/sqlite.h"
#include "db/store_internal.h"

namespace sweep {

using store_internal::job_label;
using store_internal::now_seconds;

namespace {

constexpr int kBusyTimeoutMs = 10000;
// BEGIN IMMEDIATE already waits kBusyTimeoutMs; these retries cover a writer that holds the lock
// for longer (a large ingestion batch) before we give up with a kConflict.
constexpr int kBeginRetries = 5;
constexpr int kWalRetries = 100;  // 50 ms apart: 5 s in all

struct StateName {
  JobState state;
  const char* name;
};
constexpr StateName kStateNames[] = {
    {JobState::kPending, "pending"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kDiverged, "diverged"},
    {JobState::kCancelled, "cancelled"},
    {JobState::kLost, "lost"},
    {JobState::kPruned, "pruned"},
    {JobState::kInfeasible, "infeasible"},
};

// mkdir -p of the directory holding `path`.
Status make_parent_dirs(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return ok_status();
  std::string dir = path.substr(0, slash);
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST) {
      return make_error(
          ErrorKind::kIo,
          "creating directory " + prefix + " for database " + path + ": " + std::strerror(errno),
          "pass --db or set SWEEP_DB to a writable location");
    }
  }
  return ok_status();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_memory_path(const std::string& path) {
  return path == ":memory:" || path.rfind("file::memory:", 0) == 0;
}

bool is_busy(const Db& db) {
  int code = sqlite3_errcode(db.handle()) & 0xff;
  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

// Returns the single text value of a pragma query such as "PRAGMA journal_mode=WAL".
Result<std::string> pragma_value(Db& db, const std::string& sql) {
  auto stmt = db.prepare(sql, "setting " + sql);
  if (!stmt.ok()) return stmt.error();
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  return *row ? stmt->text(0) : std::string();
}

Status configure_connection(Db& db, bool readonly) {
  if (sqlite3_busy_timeout(db.handle(), kBusyTimeoutMs) != SQLITE_OK) {
    return db.error("setting busy_timeout");
  }
  int unused = 0;
  if (sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_DEFENSIVE, 1, &unused) != SQLITE_OK) {
    return db.error("enabling defensive mode");
  }
  SWEEP_RETURN_IF_ERROR(db.exec("PRAGMA foreign_keys=ON", "enabling foreign keys"));
  // 64 MiB of page cache (allocated as used): an ingestion batch of a million rows stays in
  // memory until COMMIT instead of spilling pages to the WAL one by one, and a read of 100,000
  // jobs does not re-read its index pages.
  SWEEP_RETURN_IF_ERROR(db.exec("PRAGMA cache_size=-65536", "setting cache_size"));
  // Statement journals (each INSERT OR REPLACE of a large transaction keeps one) and sorts stay
  // in memory: once one spilled to a temporary file, every later row of the transaction cost a
  // write() to it (290 per job in a 100,000-job ingestion).
  SWEEP_RETURN_IF_ERROR(db.exec("PRAGMA temp_store=MEMORY", "setting temp_store"));
  if (readonly) {
    // Reads map the file instead of copying each page into the cache (a `sweep status` of a
    // 100,000-job database spent a quarter of its time allocating cache pages).
    SWEEP_RETURN_IF_ERROR(db.exec("PRAGMA mmap_size=1073741824", "setting mmap_size"));
    return db.exec("PRAGMA query_only=ON", "making the connection query-only");
  }
  // Switching a new file to WAL takes an exclusive lock; when another process is opening the
  // same file at that moment SQLite reports "locked" without waiting, so wait here.
  auto mode = pragma_value(db, "PRAGMA journal_mode=WAL");
  for (int attempt = 0; !mode.ok() && is_busy(db) && attempt < kWalRetries; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    mode = pragma_value(db, "PRAGMA journal_mode=WAL");
  }
  if (!mode.ok()) return mode.error();
  if (*mode != "wal" && !(is_memory_path(db.path()) && *mode == "memory")) {
    return make_error(
        ErrorKind::kDatabase,
        "setting journal_mode=WAL on " + db.path() + ": SQLite kept mode '" + *mode + "'",
        "keep the database on a local file system (WAL needs shared memory)");
  }
  return db.exec("PRAGMA synchronous=NORMAL", "setting synchronous=NORMAL");
}

// The highest applied version; 0 for an empty database.
Result<int> read_schema_version(Db& db) {
  auto exists =
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                 "looking for the schema_version table");
  if (!exists.ok()) return exists.error();
  auto found = exists->step();
  if (!found.ok()) return found.error();
  if (!*found) return 0;
  auto stmt = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version",
                         "reading the schema version");
  if (!stmt.ok()) return stmt.error();
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  return static_cast<int>(stmt->int64(0));
}

Error newer_schema_error(const std::string& path, int found) {
  return make_error(ErrorKind::kUser,
                    "database " + path + " has schema version " + std::to_string(found) +
                        ", newer than this sweep supports (" +
                        std::to_string(latest_schema_version()) + ")",
                    "use the sweep version that wrote it, or a newer one");
}

}  // namespace

const char* to_string(JobState state) {
  for (const auto& s : kStateNames) {
    if (s.state == state) return s.name;
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(const std::string& text) {
  for (const auto& s : kStateNames) {
    if (text == s.name) return s.state;
  }
  return std::nullopt;
}

bool is_final(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kDiverged || state == JobState::kCancelled ||
         state == JobState::kPruned || state == JobState::kInfeasible;
}

const std::vector<JobState>& all_job_states() {
  static const std::vector<JobState> kAll = [] {
    std::vector<JobState> all;
    for (const auto& s : kStateNames) all.push_back(s.state);
    return all;
  }();
  return kAll;
}

Store::Store(std::unique_ptr<Db> db, std::string path, bool readonly)
    : db_(std::move(db)), path_(std::move(path)), readonly_(readonly) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  if (!is_memory_path(path)) SWEEP_RETURN_IF_ERROR(make_parent_dirs(path));
  auto db = Db::open(path, /*readonly=*/false);
  if (!db.ok()) return db.error();
  SWEEP_RETURN_IF_ERROR(configure_connection(**db, /*readonly=*/false));
  std::unique_ptr<Store> store(new Store(std::move(*db), path, /*readonly=*/false));
  SWEEP_RETURN_IF_ERROR(store->migrate());
  return store;
}

Result<std::unique_ptr<Store>> Store::open_readonly(const std::string& path) {
  if (!is_memory_path(path) && !file_exists(path)) {
    return make_error(ErrorKind::kNotFound, "database " + path + " does not exist",
                      "run `sweep run SPEC.yaml` first, or point --db / SWEEP_DB at the database");
  }
  auto db = Db::open(path, /*readonly=*/true);
  if (!db.ok()) return db.error();
  SWEEP_RETURN_IF_ERROR(configure_connection(**db, /*readonly=*/true));
  std::unique_ptr<Store> store(new Store(std::move(*db), path, /*readonly=*/true));
  SWEEP_RETURN_IF_ERROR(store->check_version());
  return store;
}

int Store::schema_version() const { return schema_version_; }

Status Store::check_version() {
  auto version = read_schema_version(*db_);
  if (!version.ok()) return version.error();
  if (*version > latest_schema_version()) return newer_schema_error(path_, *version);
  if (*version == 0) {
    return make_error(ErrorKind::kNotFound, "database " + path_ + " holds no sweep tables",
                      "run `sweep run SPEC.yaml` first, or point --db / SWEEP_DB at the database");
  }
  schema_version_ = *version;
  return ok_status();
}

// Each step runs in its own BEGIN IMMEDIATE transaction and re-reads the version inside it, so
// that two processes opening a new file at once apply every step exactly once.
Status Store::migrate() {
  SWEEP_RETURN_IF_ERROR(transaction([&]() -> Status {
    return db_->exec(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
        "creating the schema_version table");
  }));
  for (const Migration& step : schema_migrations()) {
    SWEEP_RETURN_IF_ERROR(transaction([&]() -> Status {
      auto current = read_schema_version(*db_);
      if (!current.ok()) return current.error();
      if (*current > latest_schema_version()) return newer_schema_error(path_, *current);
      if (*current >= step.version) return ok_status();
      std::string what =
          "migrating " + path_ + " to schema version " + std::to_string(step.version);
      SWEEP_RETURN_IF_ERROR(db_->exec(step.sql, what));
      auto record =
          db_->prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", what);
      if (!record.ok()) return record.error();
      SWEEP_RETURN_IF_ERROR(record->bind_all(static_cast<int64_t>(step.version), now_seconds()));
      return record->run();
    }));
  }
  return check_version();
}

Status Store::transaction(const std::function<Status()>& body) {
  if (transaction_depth_ > 0) return body();
  const char* begin = readonly_ ? "BEGIN" : "BEGIN IMMEDIATE";
  Status began;
  for (int attempt = 0; attempt < kBeginRetries; ++attempt) {
    auto stmt = db_->cached(begin, "starting a transaction");
    began = stmt.ok() ? (*stmt)->run() : Status(stmt.error());
    if (began.ok() || !is_busy(*db_)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
  }
  if (!began.ok()) {
    Error error = began.error();
    error.hint = "another process keeps the database locked; is a second `sweep run` writing it?";
    return error;
  }
  ++transaction_depth_;
  Status result = body();
  --transaction_depth_;
  if (!result.ok()) {
    // The body's error is the one worth reporting; a failed ROLLBACK leaves SQLite to roll back
    // when the connection closes.
    (void)db_->exec("ROLLBACK", "rolling back");
    return result;
  }
  auto commit = db_->cached("COMMIT", "committing a transaction");
  Status committed = commit.ok() ? (*commit)->run() : Status(commit.error());
  if (!committed.ok()) (void)db_->exec("ROLLBACK", "rolling back after a failed commit");
  return committed;
}

Result<int64_t> Store::upsert_sweep(const std::string& name, const std::string& spec_path,
                                    const std::string& spec_json,
                                    const std::string& objective_metric,
                                    const std::string& objective_mode) {
  if (!parse_objective_mode(objective_mode)) {
    return make_error(ErrorKind::kUser, "sweep " + name + ": objective mode '" + objective_mode +
                                            "' is not min or max");
  }
  int64_t id = 0;
  Status status = transaction([&]() -> Status {
    std::string what = "recording sweep " + name;
    auto upsert = db_->prepare(
        "INSERT INTO sweeps (name, spec_path, spec_json, objective_metric, objective_mode, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) "
        "ON CONFLICT(name) DO UPDATE SET spec_path = excluded.spec_path, "
        "spec_json = excluded.spec_json, objective_metric = excluded.objective_metric, "
        "objective_mode = excluded.objective_mode, updated_at = excluded.updated_at",
        what);
    if (!upsert.ok()) return upsert.error();
    SWEEP_RETURN_IF_ERROR(upsert->bind_all(name, spec_path, spec_json, objective_metric,
                                           objective_mode, now_seconds()));
    SWEEP_RETURN_IF_ERROR(upsert->run());
    auto select = db_->prepare("SELECT id FROM sweeps WHERE name = ?", what);
    if (!select.ok()) return select.error();
    SWEEP_RETURN_IF_ERROR(select->bind(1, name));
    auto row = select->step();
    if (!row.ok()) return row.error();
    if (!*row) return make_error(ErrorKind::kInternal, what + ": the row vanished after insert");
    id = select->int64(0);
    return ok_status();
  });
  if (!status.ok()) return status.error();
  return id;
}

Result<UpsertStats> Store::upsert_jobs(int64_t sweep_id, const std::vector<NewJob>& jobs) {
  UpsertStats stats;
  Status status = transaction([&]() -> Status {
    std::string what = "recording jobs of sweep " + std::to_string(sweep_id);
    auto insert = db_->prepare(
        "INSERT INTO jobs (sweep_id, hash, grid_index, params, lora_scale, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(sweep_id, hash) DO NOTHING",
        what);
    if (!insert.ok()) return insert.error();
    double now = now_seconds();
    for (const NewJob& job : jobs) {
      SWEEP_RETURN_IF_ERROR(insert->reset());
      SWEEP_RETURN_IF_ERROR(insert->bind_all(sweep_id, job.hash, job.grid_index, job.params_json,
                                             job.lora_scale, now));
      SWEEP_RETURN_IF_ERROR(insert->run());
      if (db_->changes() > 0) {
        ++stats.added;
      } else {
        ++stats.existing;
      }
    }
    return ok_status();
  });
  if (!status.ok()) return status.error();
  return stats;
}

namespace {
SweepRecord sweep_from_row(const Stmt& row) {
  SweepRecord s;
  s.id = row.int64(0);
  s.name = row.text(1);
  s.spec_path = row.text(2);
  s.spec_json = row.text(3);
  s.objective_metric = row.text(4);
  s.objective_mode = row.text(5);
  s.created_at = row.real(6);
  return s;
}
constexpr const char* kSweepSelect =
    "SELECT id, name, spec_path, spec_json, objective_metric, objective_mode, created_at "
    "FROM sweeps";
}  // namespace

Result<std::optional<SweepRecord>> Store::find_sweep(const std::string& name) {
  auto stmt =
      db_->prepare(std::string(kSweepSelect) + " WHERE name = ?", "looking up sweep " + name);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, name));
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<SweepRecord>();
  return std::optional<SweepRecord>(sweep_from_row(*stmt));
}

Result<std::vector<SweepRecord>> Store::list_sweeps() {
  auto stmt = db_->prepare(std::string(kSweepSelect) + " ORDER BY id", "listing sweeps");
  if (!stmt.ok()) return stmt.error();
  std::vector<SweepRecord> sweeps;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    sweeps.push_back(sweep_from_row(*stmt));
  }
  return sweeps;
}

Result<SweepRecord> Store::resolve_sweep(const std::string& name) {
  auto sweeps = list_sweeps();
  if (!sweeps.ok()) return sweeps.error();
  std::string names;
  for (const SweepRecord& s : *sweeps) {
    if (!name.empty() && s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  if (sweeps->empty()) {
    return make_error(ErrorKind::kNotFound, "database " + path_ + " holds no sweep yet",
                      "run `sweep run SPEC.yaml` first");
  }
  if (!name.empty()) {
    return make_error(
        ErrorKind::kNotFound,
        "sweep '" + name + "' is not in database " + path_ + " (it holds: " + names + ")",
        "name one of the recorded sweeps");
  }
  if (sweeps->size() > 1) {
    return make_error(ErrorKind::kUser,
                      "database " + path_ + " holds several sweeps: " + names + "; name one",
                      "give the sweep name after the command, e.g. " + sweeps->back().name);
  }
  return sweeps->front();
}

Result<std::vector<JobRecord>> Store::list_jobs(int64_t sweep_id, std::optional<JobState> state,
                                                int64_t limit) {
  std::string sql = std::string("SELECT ") + store_internal::kJobColumns +
                    " FROM jobs WHERE sweep_id = ?1" + (state ? " AND state = ?2" : "") +
                    " ORDER BY grid_index, id LIMIT ?3";
  auto stmt = db_->prepare(sql, "listing jobs of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  if (state) SWEEP_RETURN_IF_ERROR(stmt->bind(2, to_string(*state)));
  SWEEP_RETURN_IF_ERROR(stmt->bind(3, limit > 0 ? limit : int64_t{-1}));  // -1: no limit
  std::vector<JobRecord> jobs;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto job = store_internal::job_from_row(*stmt);
    if (!job.ok()) return job.error();
    jobs.push_back(std::move(*job));
  }
  return jobs;
}

Result<JobRecord> Store::get_job(int64_t job_id) { return read_job(job_id); }

Result<JobRecord> Store::read_job(int64_t job_id) {
  static const std::string sql =
      std::string("SELECT ") + store_internal::kJobColumns + " FROM jobs WHERE id = ?";
  auto cached = db_->cached(sql, "reading " + job_label(job_id));
  if (!cached.ok()) return cached.error();
  Stmt& stmt = **cached;
  SWEEP_RETURN_IF_ERROR(stmt.bind(1, job_id));
  auto row = stmt.step();
  if (!row.ok()) return row.error();
  if (!*row) {
    return make_error(ErrorKind::kNotFound, job_label(job_id) + " does not exist in " + path_,
                      "list the jobs with `sweep jobs`");
  }
  auto job = store_internal::job_from_row(stmt);
  // Done with the row: a cached SELECT left mid-way would hold its read snapshot.
  SWEEP_RETURN_IF_ERROR(stmt.reset());
  return job;
}

Result<std::optional<JobRecord>> Store::find_job(int64_t sweep_id, const std::string& hash) {
  auto stmt = db_->prepare(std::string("SELECT ") + store_internal::kJobColumns +
                               " FROM jobs WHERE sweep_id = ? AND hash = ?",
                           "looking up job " + hash);
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind_all(sweep_id, hash));
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<JobRecord>();
  auto job = store_internal::job_from_row(*stmt);
  if (!job.ok()) return job.error();
  return std::optional<JobRecord>(std::move(*job));
}

Result<std::map<JobState, int>> Store::count_by_state(int64_t sweep_id) {
  // From version 7 the counts are kept by triggers (job_counts), before counted.
  auto stmt =
      db_->prepare(schema_version_ >= store_internal::kStatusIndexSchema
                       ? "SELECT state, n FROM job_counts WHERE sweep_id = ? AND n > 0"
                       : "SELECT state, COUNT(*) FROM jobs WHERE sweep_id = ? GROUP BY state",
                   "counting jobs of sweep " + std::to_string(sweep_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, sweep_id));
  std::map<JobState, int> counts;
  for (JobState s : all_job_states()) counts[s] = 0;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto state = parse_job_state(stmt->text(0));
    if (!state) {
      return make_error(ErrorKind::kDatabase, "sweep " + std::to_string(sweep_id) +
                                                  " has jobs in unknown state '" + stmt->text(0) +
                                                  "'");
    }
    counts[*state] = static_cast<int>(stmt->int64(1));
  }
  return counts;
}

Result<std::vector<AttemptRecord>> Store::attempts(int64_t job_id) {
  auto stmt = db_->prepare(
      "SELECT job_id, attempt, pid, host, device, run_dir, started_at, finished_at, state, "
      "exit_code, error, pack_id FROM attempts WHERE job_id = ? ORDER BY attempt",
      "listing attempts of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  std::vector<AttemptRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    AttemptRecord a;
    a.job_id = stmt->int64(0);
    a.attempt = static_cast<int>(stmt->int64(1));
    a.pid = stmt->int64(2);
    a.host = stmt->text(3);
    a.device = stmt->text(4);
    a.run_dir = stmt->text(5);
    a.started_at = stmt->real(6);
    a.finished_at = stmt->real(7);
    a.state = stmt->text(8);
    a.exit_code = stmt->opt_int(9);
    a.error = stmt->text(10);
    a.pack_id = stmt->opt_int64(11);
    out.push_back(std::move(a));
  }
  return out;
}

Status Store::start_attempt(int64_t job_id, int64_t pid, const std::string& host,
                            const std::string& device, const std::string& run_dir) {
  return transaction([&]() -> Status {
    std::string what = "starting an attempt of " + job_label(job_id);
    double now = now_seconds();
    // Cached: an UPDATE of jobs compiles every trigger on jobs, once per connection.
    auto update = db_->cached(
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, pid = ?, host = ?, "
        "device = ?, run_dir = ?, started_at = ?, finished_at = NULL, exit_code = NULL, "
        "error = '' WHERE id = ?",
        what);
    if (!update.ok()) return update.error();
    SWEEP_RETURN_IF_ERROR((*update)->bind_all(pid, host, device, run_dir, now, job_id));
    SWEEP_RETURN_IF_ERROR(store_internal::run_job_update(*db_, **update, job_id));
    auto insert = db_->cached(
        "INSERT OR REPLACE INTO attempts (job_id, attempt, pid, host, device, run_dir, started_at) "
        "SELECT id, attempt, pid, host, device, run_dir, started_at FROM jobs WHERE id = ?",
        what);
    if (!insert.ok()) return insert.error();
    SWEEP_RETURN_IF_ERROR((*insert)->bind(1, job_id));
    return (*insert)->run();
  });
}

Status Store::finish_attempt(int64_t job_id, JobState state, std::optional<int> exit_code,
                             const std::string& error) {
  return transaction([&]() -> Status {
    std::string what = "finishing the attempt of " + job_label(job_id);
    double now = now_seconds();
    auto update = db_->cached(
        "UPDATE jobs SET state = ?, exit_code = ?, error = ?, finished_at = ? WHERE id = ?", what);
    if (!update.ok()) return update.error();
    SWEEP_RETURN_IF_ERROR((*update)->bind_all(to_string(state), exit_code, error, now, job_id));
    SWEEP_RETURN_IF_ERROR(store_internal::run_job_update(*db_, **update, job_id));
    auto close = db_->cached(
        "UPDATE attempts SET state = ?, exit_code = ?, error = ?, finished_at = ? "
        "WHERE job_id = ? AND attempt = (SELECT attempt FROM jobs WHERE id = ?)",
        what);
    if (!close.ok()) return close.error();
    SWEEP_RETURN_IF_ERROR(
        (*close)->bind_all(to_string(state), exit_code, error, now, job_id, job_id));
    return (*close)->run();
  });
}

Status Store::set_state(int64_t job_id, JobState state, const std::string& error) {
  std::string what = "setting " + job_label(job_id) + " to " + to_string(state);
  auto update = db_->prepare(
      "UPDATE jobs SET state = ?1, error = CASE WHEN ?2 = '' THEN error ELSE ?2 END WHERE id = ?3",
      what);
  if (!update.ok()) return update.error();
  SWEEP_RETURN_IF_ERROR(update->bind_all(to_string(state), error, job_id));
  return store_internal::run_job_update(*db_, *update, job_id);
}

Result<int> Store::extra_attempts(int64_t job_id) {
  auto stmt = db_->prepare("SELECT extra_attempts FROM jobs WHERE id = ?",
                           "reading the extra attempts of " + job_label(job_id));
  if (!stmt.ok()) return stmt.error();
  SWEEP_RETURN_IF_ERROR(stmt->bind(1, job_id));
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (!*row) {
    return make_error(ErrorKind::kNotFound, job_label(job_id) + " does not exist in " + path_,
                      "list the jobs with `sweep jobs`");
  }
  return static_cast<int>(stmt->int64(0));
}

Status Store::set_extra_attempts(int64_t job_id, int extra_attempts) {
  auto update = db_->prepare("UPDATE jobs SET extra_attempts = ? WHERE id = ?",
                             "setting the extra attempts of " + job_label(job_id));
  if (!update.ok()) return update.error();
  SWEEP_RETURN_IF_ERROR(update->bind_all(extra_attempts, job_id));
  return store_internal::run_job_update(*db_, *update, job_id);
}

}  // namespace sweep
