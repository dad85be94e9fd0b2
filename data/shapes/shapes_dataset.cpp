#include "data/shapes/shapes_dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/failure.h"
#include "data/shapes/scene_image.h"
#include "data/shapes/scene_questions.h"
#include "data/shapes/seeded_random.h"
#include "data/shapes/shape_scene.h"

namespace fs = std::filesystem;

namespace sweep::data {
namespace {

using Json = nlohmann::ordered_json;  // keeps "id", "image", "conversations" in LLaVA's order

const char* const kSystemPrompt =
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions.";
const char* const kCaptionPrompts[] = {"Describe the image.", "What is in the picture?",
                                       "Describe what you see."};
constexpr uint64_t kTwoRoundOneIn = 4;  // one VQA train sample in four asks a second question

// Independent streams per part, so that e.g. changing val_images leaves the train split as it is.
enum Stream : uint64_t { kTrainScenes = 1, kValScenes, kCaptions, kVqaTrain, kVqaVal };

// splitmix64: spreads (seed, stream) over the whole 64-bit seed space.
uint64_t stream_seed(uint64_t seed, Stream stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(stream);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Turn {
  std::string question, answer;
};

struct ImageScene {
  std::string file;  // relative to images/
  Scene scene;
};

std::string image_name(int index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06d.png", index);
  return buf;
}

Json sample_json(const std::string& id, const std::string& image, const std::vector<Turn>& turns) {
  Json conv = Json::array();
  for (size_t i = 0; i < turns.size(); ++i) {
    const std::string human = (i == 0 ? "<image>\n" : "") + turns[i].question;
    conv.push_back(Json{{"from", "human"}, {"value", human}});
    conv.push_back(Json{{"from", "gpt"}, {"value", turns[i].answer}});
  }
  return Json{{"id", id}, {"image", image}, {"conversations", conv}};
}

// The text the tokenizer will see for a sample, as the vicuna_v1 template renders it minus the
// image placeholder and the EOS tokens (both are special tokens, not text).
std::string corpus_line(const std::vector<Turn>& turns) {
  std::string line = kSystemPrompt;
  for (const Turn& t : turns) line += " USER: " + t.question + " ASSISTANT: " + t.answer;
  return line + "\n";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) fail(ErrorKind::kIo, "shapes: cannot write " + path + " (disk full or not writable?)");
}

std::vector<ImageScene> make_scenes(const ShapesOptions& opt) {
  std::vector<ImageScene> out;
  std::set<std::string> train_keys;
  SeededRandom train_rng(stream_seed(opt.seed, kTrainScenes));
  for (int i = 0; i < opt.train_images; ++i) {
    out.push_back({image_name(i), make_scene(train_rng, opt.image_size)});
    train_keys.insert(scene_key(out.back().scene));
  }
  // Val images are never pixel-identical to a train image: a val score measures generalisation.
  SeededRandom val_rng(stream_seed(opt.seed, kValScenes));
  for (int i = 0; i < opt.val_images; ++i) {
    Scene s = make_scene(val_rng, opt.image_size);
    while (train_keys.count(scene_key(s))) s = make_scene(val_rng, opt.image_size);
    out.push_back({image_name(opt.train_images + i), std::move(s)});
  }
  return out;
}

// Images are independent, so a few threads write them; the bytes do not depend on the split.
void write_images(const std::vector<ImageScene>& scenes, const std::string& dir) {
  fs::create_directory(dir);
  const size_t n = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (size_t i = t; i < scenes.size(); i += n) {
          write_png(dir + "/" + scenes[i].file, render_scene(scenes[i].scene),
                    scenes[i].scene.size);
        }
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

struct SplitText {
  Json samples = Json::array();
  std::string corpus;
};

// Half the caption prompts are a describe request, half one of the questions the VQA set asks.
// Either way the answer is the whole description: the base model learns the words of the
// questions (their embeddings get trained) but not to answer them briefly, which the LoRA sweep
// then teaches.
SplitText captions(const std::vector<ImageScene>& train, SeededRandom& rng) {
  SplitText out;
  for (const ImageScene& is : train) {
    const std::string prompt = rng.below(2) == 0 ? kCaptionPrompts[rng.below(3)]
                                                 : pick_questions(is.scene, 1, rng)[0].question;
    const std::vector<Turn> turns = {{prompt, caption(is.scene)}};
    out.samples.push_back(sample_json("cap-" + is.file.substr(0, 6), is.file, turns));
    out.corpus += corpus_line(turns);
  }
  return out;
}

SplitText questions(const std::vector<ImageScene>& scenes, SeededRandom& rng, bool two_rounds,
                    const std::string& id_prefix) {
  SplitText out;
  for (const ImageScene& is : scenes) {
    const int rounds = two_rounds && rng.below(kTwoRoundOneIn) == 0 ? 2 : 1;
    std::vector<Turn> turns;
    for (const QuestionAnswer& qa : pick_questions(is.scene, rounds, rng)) {
      turns.push_back({qa.question, qa.answer});
    }
    out.samples.push_back(sample_json(id_prefix + is.file.substr(0, 6), is.file, turns));
    out.corpus += corpus_line(turns);
  }
  return out;
}

void check_options(const std::string& root, const ShapesOptions& opt) {
  if (opt.image_size < 32 || opt.train_images < 1 || opt.val_images < 1) {
    fail(ErrorKind::kUser, "shapes: bad options for " + root + ": image_size " +
                               std::to_string(opt.image_size) + " (need >= 32), train_images " +
                               std::to_string(opt.train_images) + ", val_images " +
                               std::to_string(opt.val_images) + " (need >= 1)");
  }
}

void write_into(const std::string& dir, const ShapesOptions& opt) {
  const ShapesPaths paths = shapes_paths(dir);
  const std::vector<ImageScene> scenes = make_scenes(opt);
  write_images(scenes, paths.images);
  const std::vector<ImageScene> train(scenes.begin(), scenes.begin() + opt.train_images);
  const std::vector<ImageScene> val(scenes.begin() + opt.train_images, scenes.end());

  SeededRandom cap_rng(stream_seed(opt.seed, kCaptions));
  const SplitText cap = captions(train, cap_rng);
  SeededRandom train_rng(stream_seed(opt.seed, kVqaTrain));
  const SplitText vqa_train = questions(train, train_rng, /*two_rounds=*/true, "vqa-");
  SeededRandom val_rng(stream_seed(opt.seed, kVqaVal));
  const SplitText vqa_val = questions(val, val_rng, /*two_rounds=*/false, "val-");

  write_text(paths.captions_train, cap.samples.dump(1) + "\n");
  write_text(paths.vqa_train, vqa_train.samples.dump(1) + "\n");
  write_text(paths.vqa_val, vqa_val.samples.dump(1) + "\n");
  // Train text only: the tokenizer never sees the val split (its words are the same anyway).
  write_text(paths.corpus,
             std::string(kSystemPrompt) + "\nUSER:\nASSISTANT:\n" + cap.corpus + vqa_train.corpus);
}

bool is_empty_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::is_empty(p, ec);
}

}  // namespace

ShapesPaths shapes_paths(const std::string& root) {
  return {root,
          root + "/images",
          root + "/captions_train.json",
          root + "/vqa_train.json",
          root + "/vqa_val.json",
          root + "/corpus.txt"};
}

void write_shapes_dataset(const std::string& root, const ShapesOptions& opt) {
  check_options(root, opt);
  const fs::path target = fs::absolute(root).lexically_normal();
  std::error_code ec;
  if (fs::exists(target, ec) && !is_empty_dir(target)) {
    fail(ErrorKind::kUser, "shapes: " + root +
                               " already exists and is not empty; remove it or "
                               "choose another directory");
  }
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string tmp = target.string() + ".partial-" + std::to_string(getpid());
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) {
    fail(ErrorKind::kIo, "shapes: cannot create " + tmp + ": " + ec.message());
  }
  try {
    write_into(tmp, opt);
    // rename(2) replaces an empty directory, so an empty `root` made by a caller is fine.
    fs::rename(tmp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail(ErrorKind::kIo, "shapes: writing " + root + " failed: " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace sweep::data
