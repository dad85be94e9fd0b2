#include "tests/data/data_fixtures.h"

#include <memory>

#include <stb_image_write.h>

namespace sweep::data::testing {

void write_png(const std::string& path, const Image& img) {
  stbi_write_png(path.c_str(), img.width, img.height, 3, img.rgb.data(), img.width * 3);
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  stbi_write_jpg(path.c_str(), img.width, img.height, 3, img.rgb.data(), quality);
}

Image solid_image(int w, int h, std::array<uint8_t, 3> rgb) {
  Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = rgb[i % 3];
  return img;
}

Image gradient_image(int w, int h) {
  Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>((x * 255) / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>((y * 255) / std::max(1, h - 1));
      p[2] = static_cast<uint8_t>(((x + y) * 37) % 256);
    }
  }
  return img;
}

namespace {
const std::string& tokenizer_temp_dir() {
  static const TempDir dir;  // removed at exit
  return dir.path();
}
}  // namespace

const std::string& test_tokenizer_dir() {
  test_tokenizer();  // trained on first use
  return tokenizer_temp_dir();
}

const Tokenizer& test_tokenizer() {
  static const Tokenizer tok = [] {
    std::vector<std::string> corpus;
    const std::vector<std::string> colours = {"red", "green", "blue", "yellow", "purple"};
    const std::vector<std::string> shapes = {"circle", "square", "triangle", "star"};
    for (int i = 0; i < 60; ++i) {
      const std::string c = colours[i % colours.size()], s = shapes[i % shapes.size()];
      corpus.push_back(std::string(kVicunaSystem) + " USER: <image>\nWhat colour is the " + s +
                       "? ASSISTANT: The " + s + " is " + c + ".");
      corpus.push_back("USER: How many shapes are there? ASSISTANT: There are " +
                       std::to_string(i) + " shapes on the table.");
      corpus.push_back("What is on the table? A " + c + " cup. Two. Where is it? Left.");
    }
    train_tokenizer(corpus, tokenizer_temp_dir() + "/tokenizer.model", 400);
    return Tokenizer::load(tokenizer_temp_dir());
  }();
  return tok;
}

Sample make_sample(const std::string& id, const std::string& image,
                   const std::vector<std::string>& values) {
  Sample s{id, image, {}};
  for (size_t i = 0; i < values.size(); ++i) {
    s.conversations.push_back(Turn{i % 2 == 0 ? "human" : "gpt", values[i]});
  }
  return s;
}

nlohmann::json sample_json(const Sample& s) {
  nlohmann::json j{{"id", s.id}};
  if (!s.image.empty()) j["image"] = s.image;
  j["conversations"] = nlohmann::json::array();
  for (const Turn& t : s.conversations) {
    j["conversations"].push_back({{"from", t.from}, {"value", t.value}});
  }
  return j;
}

}  // namespace sweep::data::testing
