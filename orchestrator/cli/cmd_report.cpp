// `sweep report [SWEEP] [--out FILE.html]`: one self-contained HTML page of a sweep (curves,
// heatmaps, leaderboard, each job, summary; docs/report.md) that opens offline.
// `sweep report [SWEEP] --serve [--port N] [--host H]`: the same page served from the live
// database, read-only, refreshing while the sweep runs; 127.0.0.1 unless --host says otherwise.
#include <iostream>
#include <memory>

#include "orchestrator/cli/commands.h"
#include "orchestrator/report/report_server.h"
#include "orchestrator/report/run_summary.h"

namespace sweep {

namespace {

struct ReportFlags {
  std::string sweep;
  std::string out;
  bool serve = false;
  int port = 8765;
  std::string host = "127.0.0.1";
  int refresh_s = 5;
};

void serve_command(const ReportFlags& f, CliContext& ctx) {
  // Fail early (a missing database or sweep) rather than on the first request.
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  store->reset();
  report::ServeOptions o;
  o.db_path = ctx.db_path();
  o.sweep = sweep->name;
  o.host = f.host;
  o.port = f.port;
  o.refresh_s = f.refresh_s;
  report::ReportServer server(o);
  auto port = server.bind();
  if (!port.ok()) return ctx.fail(port.error());
  const bool loopback = o.host == "127.0.0.1" || o.host == "localhost" || o.host == "::1";
  std::cout << "serving the report of " << sweep->name << " at http://" << o.host << ":" << *port
            << "/ from " << o.db_path << " (read-only, refreshed every " << o.refresh_s << " s)\n"
            << (loopback ? "bound to loopback only: other machines cannot reach it (ssh -L "
                           "forwards it; --host 0.0.0.0 exposes it)\n"
                         : "bound to " + o.host + ": reachable by other machines on that network\n")
            << "Ctrl-C stops it\n"
            << std::flush;
  if (Status st = server.serve(); !st.ok()) return ctx.fail(st.error());
}

void report_command(const ReportFlags& f, CliContext& ctx) {
  if (f.serve) return serve_command(f, ctx);
  auto store = Store::open_readonly(ctx.db_path());
  if (!store.ok()) return ctx.fail(store.error());
  auto sweep = (*store)->resolve_sweep(f.sweep);
  if (!sweep.ok()) return ctx.fail(sweep.error());
  const std::string path =
      f.out.empty() ? report::default_report_path(ctx.runs_dir(), sweep->name) : f.out;
  if (Status st = report::write_report(**store, *sweep, path); !st.ok())
    return ctx.fail(st.error());
  std::cout << path << "\n";
}

}  // namespace

void add_report_command(CLI::App& app, CliContext& ctx) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Write a self-contained HTML report of a sweep (or serve it live with --serve)");
  cmd->add_option("sweep", flags->sweep, "sweep name (default: the only sweep)");
  auto* out = cmd->add_option("--out", flags->out,
                              "HTML file to write (default: <runs>/<sweep>/report.html)");
  cmd->add_flag("--serve", flags->serve,
                "serve the page from the live database on http://127.0.0.1:PORT/ instead")
      ->excludes(out);
  cmd->add_option("--port", flags->port, "port for --serve (0: any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", flags->host, "address for --serve to bind (default 127.0.0.1)");
  cmd->add_option("--refresh", flags->refresh_s, "seconds between the served page's refreshes")
      ->check(CLI::Range(1, 3600));
  cmd->callback([flags, &ctx] { report_command(*flags, ctx); });
}

}  // namespace sweep
