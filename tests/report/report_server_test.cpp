// `sweep report --serve`: the page and its data over HTTP from a database file, read-only.
#include "orchestrator/report/report_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/store.h"

#ifdef SWEEP_REPORT_SERVER
#include <httplib.h>
#endif

namespace sweep::report {
namespace {

namespace fs = std::filesystem;

#ifdef SWEEP_REPORT_SERVER
TEST(ReportServer, ServesThePageAndFreshDataOnLoopback) {
  const fs::path dir = fs::temp_directory_path() / ("sweep-serve-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string db = (dir / "sweep.db").string();
  // A file database with one sweep of two jobs.
  {
    auto store = Store::open(db);
    ASSERT_TRUE(store.ok());
    auto id = (*store)->upsert_sweep("served", "s.yaml", "{}", "val_loss", "min");
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(
        (*store)
            ->upsert_jobs(*id, {{"h1", 0, "{\"lora_r\":4}", 1}, {"h2", 1, "{\"lora_r\":8}", 1}})
            .ok());
  }
  ServeOptions o;
  o.db_path = db;
  o.port = 0;
  ReportServer server(o);
  auto port = server.bind();
  ASSERT_TRUE(port.ok()) << port.error().to_string();
  std::thread serving([&] { EXPECT_TRUE(server.serve().ok()); });
  httplib::Client client("127.0.0.1", *port);
  auto page = client.Get("/");
  ASSERT_TRUE(page) << "no answer from the server";
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("{\"live\":true"), std::string::npos);
  auto data = client.Get("/data.json");
  ASSERT_TRUE(data);
  EXPECT_EQ(data->status, 200);
  const auto doc = nlohmann::json::parse(data->body);
  EXPECT_EQ(doc["sweep"]["name"], "served");
  EXPECT_EQ(doc["jobs"].size(), 2u);
  server.stop();
  serving.join();
  fs::remove_all(dir);
}
#endif

TEST(ReportServer, ABusyPortIsAnErrorNamingIt) {
  if (!report_server_available()) {
    ReportServer server(ServeOptions{});
    EXPECT_FALSE(server.bind().ok());
    return;
  }
  // Another program listening on a loopback port.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ServeOptions o;
  o.port = ntohs(addr.sin_port);
  ReportServer server(o);
  auto bound = server.bind();
  ::close(fd);
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().message.find("127.0.0.1:" + std::to_string(o.port)), std::string::npos);
}

}  // namespace
}  // namespace sweep::report
