// Fixtures the data tests generate: a temp dir, files, images and a tokenizer trained on the fly.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/conversation.h"
#include "data/image.h"
#include "data/tokenizer.h"

namespace sweep::data::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sweep-data-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A solid or patterned RGB image written as PNG (exact) or JPEG (lossy).
void write_png(const std::string& path, const Image& img);
void write_jpeg(const std::string& path, const Image& img, int quality);
Image solid_image(int w, int h, std::array<uint8_t, 3> rgb);
Image gradient_image(int w, int h);

// A BPE tokenizer trained (LLaMA settings) on prompts like the ones the tests encode; cached per
// process. Returns the loaded tokenizer; its file lies in a temp dir that lives for the process.
const Tokenizer& test_tokenizer();
const std::string& test_tokenizer_dir();  // holds tokenizer.model

// A LLaVA sample from (human, gpt, human, gpt, ...) values.
Sample make_sample(const std::string& id, const std::string& image,
                   const std::vector<std::string>& values);
nlohmann::json sample_json(const Sample& s);

}  // namespace sweep::data::testing
