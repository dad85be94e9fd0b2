// `sweep report --serve`: the report page served over HTTP from the live database, read-only, so
// that it can be watched while `sweep run` writes. GET / is the page (it re-reads /data.json every
// few seconds); GET /data.json is the report's data (report_data.h). Each request opens the
// database read-only and builds the data afresh. Binds to 127.0.0.1 unless told otherwise.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace sweep::report {

struct ServeOptions {
  std::string db_path;
  std::string sweep;  // as for every command: empty = the only sweep
  std::string host = "127.0.0.1";
  int port = 8765;  // 0: any free port
  int refresh_s = 5;
};

// False when sweep was built without cpp-httplib (libcpp-httplib-dev).
bool report_server_available();

class ReportServer {
 public:
  explicit ReportServer(ServeOptions options);
  ~ReportServer();
  ReportServer(const ReportServer&) = delete;
  ReportServer& operator=(const ReportServer&) = delete;

  // Binds the socket; returns the port (the chosen one when options.port is 0). kIo when the
  // address cannot be bound (port in use), kUser without cpp-httplib.
  Result<int> bind();
  // Serves until stop() (blocking). Call after bind().
  Status serve();
  // Makes serve() return; safe from another thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sweep::report
