// builtin:shapes — a generated LLaVA-format dataset of coloured shapes (docs/demo.md).
//
// Layout of a dataset root:
//   images/              PNG files 000000.png ... (train images first, then val images)
//   captions_train.json  one caption sample per train image (for training the base model in full)
//   vqa_train.json       question/answer samples on the train images (for the LoRA sweep)
//   vqa_val.json         question/answer samples on the val images (disjoint from train)
//   corpus.txt           the train prompts and answers as the chat template renders them, for
//                        training the tokenizer
//
// Everything is a pure function of ShapesOptions: the same options give the same bytes on every
// platform (own integer mapping over std::mt19937_64, no std:: distributions). LibTorch-free.
#pragma once

#include <cstdint>
#include <string>

namespace sweep::data {

struct ShapesOptions {
  int image_size = 64;      // square images, pixels; at least 32
  int train_images = 2000;  // one caption sample and one VQA sample each
  int val_images = 200;     // one VQA sample each
  uint64_t seed = 1234;
};

struct ShapesPaths {
  std::string root, images, captions_train, vqa_train, vqa_val, corpus;
};

// The file names inside a dataset root; touches nothing.
ShapesPaths shapes_paths(const std::string& root);

// Writes the whole dataset into `root`: builds it in a sibling temp dir, then renames it into
// place, so `root` is either absent or complete. `root` must not exist or be an empty directory.
// Throws std::runtime_error naming the path on IO errors or bad options.
void write_shapes_dataset(const std::string& root, const ShapesOptions& opt);

}  // namespace sweep::data
