#include "orchestrator/report/report_server.h"

#include <httplib.h>

#include "db/store.h"
#include "orchestrator/report/html.h"
#include "orchestrator/report/report_data.h"

namespace sweep::report {

bool report_server_available() { return true; }

struct ReportServer::Impl {
  ServeOptions options;
  httplib::Server server;
};

namespace {

// The sweep's data from a fresh read-only connection (the writer may be running).
Result<nlohmann::json> current_data(const ServeOptions& o) {
  auto store = Store::open_readonly(o.db_path);
  if (!store.ok()) return store.error();
  auto sweep = (*store)->resolve_sweep(o.sweep);
  if (!sweep.ok()) return sweep.error();
  return build_report_data(**store, *sweep);
}

void answer_error(httplib::Response& res, const Error& e) {
  res.status = 500;
  res.set_content("sweep report: " + e.to_string() + "\n", "text/plain; charset=utf-8");
}

}  // namespace

ReportServer::ReportServer(ServeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const ServeOptions& o = impl_->options;
  impl_->server.Get("/", [&o](const httplib::Request&, httplib::Response& res) {
    auto data = current_data(o);
    if (!data.ok()) return answer_error(res, data.error());
    PageOptions page;
    page.live = true;
    page.refresh_s = o.refresh_s;
    res.set_header("Cache-Control", "no-store");
    res.set_content(render_report_html(*data, page), "text/html; charset=utf-8");
  });
  impl_->server.Get("/data.json", [&o](const httplib::Request&, httplib::Response& res) {
    auto data = current_data(o);
    if (!data.ok()) return answer_error(res, data.error());
    res.set_header("Cache-Control", "no-store");
    res.set_content(data->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
}

ReportServer::~ReportServer() = default;

Result<int> ReportServer::bind() {
  const ServeOptions& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->server.bind_to_any_port(o.host.c_str());
    if (port < 0) port = 0;
  } else if (!impl_->server.bind_to_port(o.host.c_str(), port)) {
    port = 0;
  }
  if (port <= 0) {
    return make_error(ErrorKind::kIo, "cannot listen on " + o.host + ":" + std::to_string(o.port),
                      "the port may be in use: pass another with --port");
  }
  return port;
}

Status ReportServer::serve() {
  if (!impl_->server.listen_after_bind()) {
    return make_error(ErrorKind::kIo, "the report server stopped with an error");
  }
  return ok_status();
}

void ReportServer::stop() { impl_->server.stop(); }

}  // namespace sweep::report
