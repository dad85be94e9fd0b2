#include "data/max_length.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/failure.h"

namespace sweep::data {

std::string MaxLength::notice() const {
  if (!clamped()) return "";
  return "model_max_length " + std::to_string(requested) +
         " is past the model's max_position_embeddings " + std::to_string(max_positions) +
         ": sequences are cut at " + std::to_string(value);
}

MaxLength resolve_max_length(int64_t model_max_length, int64_t max_position_embeddings) {
  MaxLength m;
  m.requested = model_max_length;
  m.max_positions = std::max<int64_t>(0, max_position_embeddings);
  m.value = m.max_positions > 0 ? std::min(model_max_length, m.max_positions) : model_max_length;
  return m;
}

int64_t read_max_position_embeddings(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path);
  if (!in) return 0;
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::kUser, path + ": not valid JSON: " + e.what());
  }
  if (!config.is_object()) fail(ErrorKind::kUser, path + ": not a JSON object");
  const nlohmann::json& text = config.contains("text_config") && config["text_config"].is_object()
                                   ? config["text_config"]
                                   : config;
  const auto it = text.find("max_position_embeddings");
  if (it == text.end() || !it->is_number_integer()) return 0;
  return it->get<int64_t>();
}

}  // namespace sweep::data
