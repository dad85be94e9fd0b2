// `sweep report --serve` without cpp-httplib: every call says how to get it.
#include "orchestrator/report/report_server.h"

namespace sweep::report {

namespace {
Error missing() {
  return Error{ErrorKind::kUser, "this sweep was built without cpp-httplib: --serve is unavailable",
               "install libcpp-httplib-dev (scripts/install-deps.sh) and rebuild"};
}
}  // namespace

bool report_server_available() { return false; }

struct ReportServer::Impl {};

ReportServer::ReportServer(ServeOptions) : impl_(std::make_unique<Impl>()) {}
ReportServer::~ReportServer() = default;
Result<int> ReportServer::bind() { return missing(); }
Status ReportServer::serve() { return missing(); }
void ReportServer::stop() {}

}  // namespace sweep::report
