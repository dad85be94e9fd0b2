#include "db/query_guard.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace sweep {

namespace {

// Pragmas that only report; allowed with no argument (`PRAGMA page_count`).
const std::set<std::string>& read_pragmas() {
  static const std::set<std::string> kRead = {
      "application_id", "collation_list",    "compile_options",  "database_list",
      "encoding",       "foreign_key_check", "foreign_key_list", "foreign_keys",
      "freelist_count", "function_list",     "index_info",       "index_list",
      "index_xinfo",    "integrity_check",   "journal_mode",     "module_list",
      "page_count",     "page_size",         "pragma_list",      "quick_check",
      "schema_version", "table_info",        "table_list",       "table_xinfo",
      "user_version"};
  return kRead;
}

// Of those, the ones whose argument names what to report on (`PRAGMA table_info(jobs)`) instead
// of setting a value.
const std::set<std::string>& read_pragmas_with_argument() {
  static const std::set<std::string> kWithArgument = {
      "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
      "integrity_check",   "quick_check",      "table_info", "table_list", "table_xinfo"};
  return kWithArgument;
}

// Table-valued forms (`SELECT * FROM pragma_table_info('jobs')`) of the read-only pragmas. Their
// argument is invisible to the authorizer, so pragmas whose argument could set a value
// (journal_mode, page_size) are left out; their plain `PRAGMA name` form still reports.
bool read_pragma_table(const std::string& table) {
  const std::string prefix = "pragma_";
  if (table.rfind(prefix, 0) != 0) return false;
  std::string name = table.substr(prefix.size());
  return read_pragmas().count(name) && name != "journal_mode" && name != "page_size";
}

bool schema_table(const std::string& table) {
  return table == "sqlite_master" || table == "sqlite_schema" || table == "sqlite_temp_master" ||
         table == "sqlite_temp_schema";
}

std::string lower(const char* text) {
  std::string s = text ? text : "";
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string describe(int action, const char* arg1, const char* arg2) {
  std::string a1 = arg1 ? arg1 : "";
  switch (action) {
    case SQLITE_ATTACH:
      return "ATTACH";
    case SQLITE_DETACH:
      return "DETACH";
    case SQLITE_INSERT:
      return "INSERT into " + a1;
    case SQLITE_UPDATE:
      return "UPDATE of " + a1;
    case SQLITE_DELETE:
      return "DELETE from " + a1;
    case SQLITE_TRANSACTION:
      return "transaction control (" + a1 + ")";
    case SQLITE_SAVEPOINT:
      return "SAVEPOINT";
    case SQLITE_PRAGMA:
      return "PRAGMA " + a1 + (arg2 ? std::string("=") + arg2 : std::string());
    case SQLITE_FUNCTION:
      return "function " + std::string(arg2 ? arg2 : "");
    case SQLITE_READ:
      return "table-valued function " + a1 + " (only read-only pragmas are allowed)";
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
      return "CREATE INDEX " + a1;
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
      return "CREATE TABLE " + a1;
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
      return "CREATE TRIGGER " + a1;
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
      return "CREATE VIEW " + a1;
    case SQLITE_CREATE_VTABLE:
      return "CREATE VIRTUAL TABLE " + a1;
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
      return "DROP INDEX " + a1;
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
      return "DROP TABLE " + a1;
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      return "DROP TRIGGER " + a1;
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
      return "DROP VIEW " + a1;
    case SQLITE_DROP_VTABLE:
      return "DROP VIRTUAL TABLE " + a1;
    case SQLITE_ALTER_TABLE:
      return "ALTER TABLE " + std::string(arg2 ? arg2 : "");
    default:
      return "changing the database (ANALYZE, REINDEX, VACUUM, ...)";
  }
}

}  // namespace

QueryGuard::QueryGuard(sqlite3* db) : db_(db) { sqlite3_set_authorizer(db_, &authorize, this); }

QueryGuard::~QueryGuard() { sqlite3_set_authorizer(db_, nullptr, nullptr); }

int QueryGuard::authorize(void* self, int action, const char* arg1, const char* arg2,
                          const char* /*db_name*/, const char* /*trigger*/) {
  auto* guard = static_cast<QueryGuard*>(self);
  bool allowed = false;
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
      allowed = true;
      break;
    case SQLITE_READ: {
      std::string table = lower(arg1);
      allowed = table.rfind("pragma_", 0) != 0 || read_pragma_table(table);
      break;
    }
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      // Writes of the schema table are let through so that the action after them names the
      // statement: SQLite authorizes setting up a table-valued pragma as an update of the schema
      // table's columns, CREATE and DROP as an insert or delete followed by their own action
      // (refused below), ALTER TABLE has its own action before it, a plain write of the schema
      // table is refused by SQLite itself ("may not be modified"), and the statement must still
      // be read-only (Store::query_readonly).
      allowed = schema_table(lower(arg1));
      break;
    case SQLITE_FUNCTION:
      allowed = lower(arg2) != "load_extension";
      break;
    case SQLITE_PRAGMA: {
      std::string name = lower(arg1);
      allowed = read_pragmas().count(name) &&
                (arg2 == nullptr || read_pragmas_with_argument().count(name));
      guard->read_pragma_ = allowed;
      break;
    }
    default:
      allowed = false;
  }
  if (allowed) return SQLITE_OK;
  guard->denied_ = true;
  if (guard->refused_.empty()) guard->refused_ = describe(action, arg1, arg2);
  return SQLITE_DENY;
}

}  // namespace sweep
