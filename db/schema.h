// The database schema as an ordered list of forward migrations (docs/database.md). Migration i
// takes a database from version i to version i+1; Store::open applies the missing ones, each in
// its own transaction, and records the version in the schema_version table. Never edit a
// released step: append a new one.
#pragma once

#include <vector>

namespace sweep {

struct Migration {
  int version;      // the schema version after this step
  const char* sql;  // one or more statements
};

const std::vector<Migration>& schema_migrations();

// The version this build writes: the last migration's.
int latest_schema_version();

}  // namespace sweep
